//! The result table: one row per benchmark, iopkt beside its reference,
//! the medians and their ratio, rendered as markdown.

use std::fmt::Write;

/// One side of a row.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Samples of a measured figure (the median is shown).
    Measured(Vec<f64>),
    /// A figure that is not a number to take a median of (an analysis).
    Text(String),
    /// Nothing to compare with.
    None,
    /// Could not run here, and why (no root, a tool missing): not a failure.
    Skipped(String),
    /// Should have run and did not: the error.
    Failed(String),
}

impl Cell {
    pub fn median(&self) -> Option<f64> {
        match self {
            Cell::Measured(v) => crate::stats::median(v),
            _ => None,
        }
    }

    pub fn failure(&self) -> Option<&str> {
        match self {
            Cell::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether a larger figure is better (throughput) or worse (latency,
/// memory, time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub better: Better,
    pub iopkt: Cell,
    pub reference: Cell,
    /// What the reference is, shown in the table.
    pub reference_is: String,
}

impl Row {
    /// iopkt's median divided by the reference's.
    pub fn ratio(&self) -> Option<f64> {
        let (a, b) = (self.iopkt.median()?, self.reference.median()?);
        (b != 0.0).then_some(a / b)
    }

    pub fn failures(&self) -> Vec<String> {
        [&self.iopkt, &self.reference]
            .iter()
            .filter_map(|c| c.failure())
            .map(|e| format!("{}: {e}", self.name))
            .collect()
    }
}

/// A figure with three significant digits or so.
pub fn number(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell_text(c: &Cell, unit: &str) -> String {
    match c {
        Cell::Measured(v) => match crate::stats::median(v) {
            Some(m) if v.len() > 1 => format!("{} {unit} (n={})", number(m), v.len()),
            Some(m) => format!("{} {unit}", number(m)),
            None => "no samples".into(),
        },
        Cell::Text(t) => t.clone(),
        Cell::None => "—".into(),
        Cell::Skipped(why) => format!("skipped: {why}"),
        // One line of the error in the table; the whole of it is printed.
        Cell::Failed(e) => format!("FAILED: {}", e.lines().next().unwrap_or_default()),
    }
}

/// The markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| benchmark | iopkt | reference | reference is | iopkt ÷ reference |\n");
    s.push_str("|---|---|---|---|---|\n");
    for r in rows {
        let ratio = match r.ratio() {
            Some(x) => {
                let hint = match r.better {
                    Better::Higher => "higher is better",
                    Better::Lower => "lower is better",
                };
                format!("{}× ({hint})", number(x))
            }
            None => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.name,
            cell_text(&r.iopkt, r.unit).replace('|', "/"),
            cell_text(&r.reference, r.unit).replace('|', "/"),
            r.reference_is,
            ratio
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_and_rendering() {
        let r = Row {
            name: "bulk".into(),
            unit: "Gbit/s",
            better: Better::Higher,
            iopkt: Cell::Measured(vec![1.0, 3.0, 2.0]),
            reference: Cell::Measured(vec![8.0]),
            reference_is: "kernel".into(),
        };
        assert_eq!(r.ratio(), Some(0.25));
        let t = render(&[r]);
        assert!(
            t.contains(
                "| bulk | 2.00 Gbit/s (n=3) | 8.00 Gbit/s | kernel | 0.250× (higher is better) |"
            ),
            "{t}"
        );
        let f = Row {
            name: "x".into(),
            unit: "",
            better: Better::Lower,
            iopkt: Cell::Failed("boom\nmore".into()),
            reference: Cell::Skipped("needs root".into()),
            reference_is: String::new(),
        };
        assert_eq!(f.failures(), vec!["x: boom\nmore".to_string()]);
        assert!(render(&[f]).contains("FAILED: boom | skipped: needs root"));
    }
}
