//! The applications the plugin's form read from Pinpoint a moment ago, so the submit that
//! follows fills what it leaves out with the values the recruiter was shown, without reading
//! the application again inside Pinpoint's time limit. Only the submit reuses them: a form
//! always reads afresh.
//!
//! They stay in the process that served the form. Where several instances share the database, a
//! submit that lands on another one misses and reads the application from Pinpoint as the form
//! did (or, when Pinpoint is slow, uses the values Pinpoint sent with the submit): a copy shared
//! through the database would hold candidates' data in one more place, to be sealed, expired and
//! erased, for a read the miss merely repeats.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::mapping::variables::Values;

/// Long enough for a recruiter to fill the form in.
const KEEP: Duration = Duration::from_secs(10 * 60);
/// Forms opened at once by a whole team stay well under this; the oldest goes first.
const MOST: usize = 256;

#[derive(Default)]
pub(crate) struct RecentApplications {
    map: Mutex<HashMap<String, (Instant, Values)>>,
}

impl RecentApplications {
    pub(crate) fn get(&self, id: &str) -> Option<Values> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|(at, _)| at.elapsed() < KEEP)
            .map(|(_, values)| values.clone())
    }

    pub(crate) fn put(&self, id: &str, values: Values) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (at, _)| at.elapsed() < KEEP);
        if map.len() >= MOST && !map.contains_key(id) {
            let oldest = map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(id.to_owned(), (Instant::now(), values));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_the_form_read_and_no_more_than_its_bound() {
        let recent = RecentApplications::default();
        assert!(recent.get("7").is_none());
        recent.put("7", Values::default());
        assert!(recent.get("7").is_some());
        for i in 0..(MOST + 10) {
            recent.put(&format!("other-{i}"), Values::default());
        }
        assert_eq!(recent.len(), MOST);
        // the oldest made way first
        assert!(recent.get("7").is_none());
        assert!(recent.get("other-0").is_none());
        assert!(recent.get(&format!("other-{}", MOST + 9)).is_some());
    }
}
