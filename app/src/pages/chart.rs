//! The dashboard's exports-per-day chart: stacked bars drawn as SVG on the server. No script and
//! no style attributes (the CSP forbids inline styles): colours come from CSS classes, and the
//! numbers are also given as a table for screen readers.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayLine {
    /// `YYYY-MM-DD`
    pub day: String,
    pub succeeded: i64,
    pub failed: i64,
    pub other: i64,
}

impl DayLine {
    pub fn total(&self) -> i64 {
        self.succeeded + self.failed + self.other
    }
}

const LEFT: i64 = 40;
const RIGHT: i64 = 6;
const COLUMN: i64 = 38;
const BAR: i64 = 26;
const TOP: i64 = 12;
const PLOT: i64 = 140;
const HEIGHT: i64 = TOP + PLOT + 26;

/// A round top for the axis at or above the tallest bar: 1, 2, 5, 10, 20, 50, …
pub fn axis_max(tallest: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= tallest {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// One coloured piece of a bar, in SVG units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub class: &'static str,
    pub y: i64,
    pub height: i64,
}

/// The pieces of one day's bar, bottom up: succeeded, failed, other. A piece that is not zero is
/// at least 2 units tall so a single failure among hundreds still shows.
pub fn stack(day: &DayLine, max: i64) -> Vec<Segment> {
    let max = max.max(1);
    let mut pieces: Vec<(&'static str, i64)> = [
        ("bar-succeeded", day.succeeded),
        ("bar-failed", day.failed),
        ("bar-other", day.other),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(class, n)| (class, (n * PLOT / max).max(2)))
    .collect();
    // the minimum size may overfill the plot: the tallest piece gives the room back
    let over = pieces.iter().map(|(_, h)| h).sum::<i64>() - PLOT;
    if over > 0 {
        if let Some(tallest) = pieces.iter_mut().max_by_key(|(_, h)| *h) {
            tallest.1 -= over;
        }
    }
    let mut bottom = TOP + PLOT;
    pieces
        .into_iter()
        .map(|(class, height)| {
            bottom -= height;
            Segment {
                class,
                y: bottom,
                height,
            }
        })
        .collect()
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A day's numbers in words, for the bar's tooltip.
fn day_words(d: &DayLine) -> String {
    format!(
        "{}: {} succeeded, {} failed, {} queued or running",
        d.day, d.succeeded, d.failed, d.other
    )
}

#[component]
pub fn ExportsPerDay(days: Vec<DayLine>) -> impl IntoView {
    let max = axis_max(days.iter().map(DayLine::total).max().unwrap_or(0));
    let width = LEFT + COLUMN * i64::try_from(days.len()).unwrap_or(0) + RIGHT;
    let sum = |f: fn(&DayLine) -> i64| days.iter().map(f).sum::<i64>();
    let (succeeded, failed, other) = (sum(|d| d.succeeded), sum(|d| d.failed), sum(|d| d.other));
    let description = format!(
        "{} in {} days: {succeeded} succeeded, {failed} failed, {other} queued or running.",
        plural(succeeded + failed + other, "export", "exports"),
        days.len()
    );
    let last = days.len().saturating_sub(1);
    let ticks = if max >= 2 {
        vec![0, max / 2, max]
    } else {
        vec![0, max]
    };
    let grid = ticks
        .into_iter()
        .map(|v| {
            let y = TOP + PLOT - v * PLOT / max;
            view! {
                <line class="grid" x1=LEFT x2=width - RIGHT y1=y y2=y />
                <text class="axis" x=LEFT - 6 y=y + 4 text-anchor="end">{v}</text>
            }
        })
        .collect_view();
    let columns = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = LEFT + COLUMN * i64::try_from(i).unwrap_or(0) + (COLUMN - BAR) / 2;
            let label = d.day.get(8..10).unwrap_or("").trim_start_matches('0').to_owned();
            let label_class = if i == last { "day today" } else { "day" };
            view! {
                <g class="column">
                    <title>{day_words(d)}</title>
                    {stack(d, max)
                        .into_iter()
                        .map(|s| view! { <rect class=s.class x=x y=s.y width=BAR height=s.height rx="2" /> })
                        .collect_view()}
                    <text class=label_class x=x + BAR / 2 y=TOP + PLOT + 18 text-anchor="middle">{label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <svg
                class="bars"
                viewBox=format!("0 0 {width} {HEIGHT}")
                role="img"
                aria-labelledby="chart-title chart-desc"
            >
                <title id="chart-title">{format!("Exports per day, last {} days", days.len())}</title>
                <desc id="chart-desc">{description.clone()}</desc>
                {grid}
                {columns}
            </svg>
            <figcaption class="legend">
                <span class="key"><span class="swatch bar-succeeded" aria-hidden="true"></span>"Succeeded " <strong>{succeeded}</strong></span>
                <span class="key"><span class="swatch bar-failed" aria-hidden="true"></span>"Failed " <strong>{failed}</strong></span>
                <span class="key"><span class="swatch bar-other" aria-hidden="true"></span>"Queued or running " <strong>{other}</strong></span>
            </figcaption>
            // a table is never narrower than its content: the hiding box wraps it, or its width
            // would widen the page on a phone
            <div class="sr-only">
            <table>
                <caption>"Exports per day (by the day they were created, UTC)"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Day"</th>
                        <th scope="col">"Succeeded"</th>
                        <th scope="col">"Failed"</th>
                        <th scope="col">"Queued or running"</th>
                    </tr>
                </thead>
                <tbody>
                    {days
                        .iter()
                        .map(|d| view! {
                            <tr>
                                <th scope="row">{d.day.clone()}</th>
                                <td>{d.succeeded}</td>
                                <td>{d.failed}</td>
                                <td>{d.other}</td>
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(succeeded: i64, failed: i64, other: i64) -> DayLine {
        DayLine {
            day: "2026-11-22".into(),
            succeeded,
            failed,
            other,
        }
    }

    #[test]
    fn the_axis_rounds_up_to_one_two_or_five() {
        let tops: Vec<i64> = [0, 1, 2, 3, 6, 10, 11, 49, 51, 140]
            .into_iter()
            .map(axis_max)
            .collect();
        assert_eq!(tops, [1, 1, 2, 5, 10, 10, 20, 50, 100, 200]);
    }

    #[test]
    fn bars_stack_bottom_up_and_fill_the_plot_at_the_maximum() {
        let s = stack(&day(6, 3, 1), 10);
        let classes: Vec<&str> = s.iter().map(|s| s.class).collect();
        assert_eq!(classes, ["bar-succeeded", "bar-failed", "bar-other"]);
        assert_eq!(s[0].y + s[0].height, TOP + PLOT, "starts on the baseline");
        assert_eq!(s[1].y + s[1].height, s[0].y, "no gap");
        assert_eq!(s.iter().map(|s| s.height).sum::<i64>(), PLOT);
        assert_eq!(s[2].y, TOP);
    }

    #[test]
    fn empty_days_draw_nothing_and_tiny_counts_still_show() {
        assert!(stack(&day(0, 0, 0), 1).is_empty());
        let s = stack(&day(998, 1, 0), 1000);
        assert_eq!(s[1].height, 2);
        assert!(s.iter().all(|s| s.y >= TOP));
    }
}
