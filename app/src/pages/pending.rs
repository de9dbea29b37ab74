//! Screens whose data arrives with the export pipeline and the mapping editor. Until then they say
//! plainly what they will hold, so navigation is complete and nobody meets a dead link.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
fn Empty(title: &'static str, lead: &'static str, next: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <h1>{title}</h1>
        <section class="empty">
            <p class="lead">{lead}</p>
            <p>{next}</p>
        </section>
    }
}

#[component]
pub fn ExportsPage() -> impl IntoView {
    view! {
        <Empty
            title="Exports"
            lead="No exports yet."
            next="Every hire sent to HiBob, from the Send to HiBob button in Pinpoint or from the application_hired webhook, will be listed here with its status and timeline."
        />
    }
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    view! {
        <Empty
            title="Webhooks"
            lead="No webhook deliveries yet."
            next="Each delivery Pinpoint makes to /webhooks/pinpoint will be listed here: accepted, duplicate, ignored or rejected, with the reason."
        />
    }
}

#[component]
pub fn MappingsPage() -> impl IntoView {
    view! {
        <Empty
            title="Mappings"
            lead="The default mapping is in use."
            next="First name, last name, email, start date and site are taken from the Pinpoint application. Editing the mapping with live preview will be available here."
        />
    }
}
