//! How quickly an endpoint answers this console: kept per console, since it says how loaded
//! the path from here is, not how much of the window is left.

/// How much the quickest answer time is forgotten per answer that is not quicker: slowly, so a
/// service that slows down under load shows it, yet a lasting change is taken as the new normal
/// after a few hundred answers.
const QUICKEST_DRIFT: f64 = 1.005;
/// The weight of the latest answer in the running average of answer times.
const RECENT_WEIGHT: f64 = 0.2;
/// Fewer answers than this say nothing about whether the service slows down.
pub(super) const LATENCY_SAMPLES: u32 = 8;
/// Answer times are compared from this up: an endpoint that answers in a millisecond and then in
/// twenty is not slowing an export that takes half a second, only showing a busy machine.
const LATENCY_FLOOR_SECS: f64 = 0.05;

/// How long an endpoint takes to answer once a call is sent (the wait for its turn left out): the
/// quickest recent answer and a running average of the latest. Their ratio says whether the
/// service slows down under the calls in flight, which is when more in flight stops paying.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Latency {
    quickest: f64,
    recent: f64,
    samples: u32,
}

impl Latency {
    pub(super) fn observe(&mut self, secs: f64) {
        // a clock step or a cached answer must not make the quickest zero
        let secs = secs.max(0.000_1);
        if self.samples == 0 {
            self.quickest = secs;
            self.recent = secs;
        } else {
            self.quickest = (self.quickest * QUICKEST_DRIFT).min(secs);
            self.recent += RECENT_WEIGHT * (secs - self.recent);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The latest answers' time over the quickest (or over [`LATENCY_FLOOR_SECS`], whichever is
    /// longer): 1 when nothing waits, 2 when calls take twice as long as they can.
    pub(super) fn slowdown(&self) -> Option<f64> {
        (self.samples >= LATENCY_SAMPLES)
            .then(|| self.recent / self.quickest.max(LATENCY_FLOOR_SECS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOWED: f64 = 2.0;

    #[test]
    fn answer_times_say_when_the_service_slows_down() {
        let mut l = Latency::default();
        for _ in 0..(LATENCY_SAMPLES - 1) {
            l.observe(0.2);
        }
        assert_eq!(l.slowdown(), None, "too few answers to say");
        l.observe(0.2);
        assert!((l.slowdown().unwrap() - 1.0).abs() < 1e-9);
        for _ in 0..10 {
            l.observe(0.6);
        }
        let slowed = l.slowdown().unwrap();
        assert!(slowed > SLOWED, "three times slower shows: {slowed}");
        for _ in 0..2_000 {
            l.observe(0.6);
        }
        let settled = l.slowdown().unwrap();
        assert!(
            settled < 1.1,
            "a lasting change becomes the norm: {settled}"
        );
        l.observe(0.0);
        assert!(
            l.slowdown().unwrap().is_finite(),
            "a zero time divides nothing by zero"
        );

        let mut quick = Latency::default();
        for t in [0.001; 8].into_iter().chain([0.02; 20]) {
            quick.observe(t);
        }
        assert!(
            quick.slowdown().unwrap() < 1.0,
            "a millisecond growing to twenty is a busy machine, not a slow service"
        );
        for _ in 0..20 {
            quick.observe(0.3);
        }
        assert!(
            quick.slowdown().unwrap() > SLOWED,
            "but a quick endpoint can still slow down"
        );
    }
}
