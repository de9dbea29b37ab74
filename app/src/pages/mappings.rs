//! The mapping screen: the built-in mapping is described until the mapping editor replaces it.

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
pub fn MappingsPage() -> impl IntoView {
    view! {
        <Empty
            title="Mappings"
            lead="The built-in mapping is in use."
            next="firstName, surname and email come from the Pinpoint application; work.site is the Default HiBob site from Settings; work.startDate is the offer's start date, or the hire date plus the default number of days from Settings. The CV (pdf_cv attachment) goes to the employee's shared documents."
        />
    }
}
