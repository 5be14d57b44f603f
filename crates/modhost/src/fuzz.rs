//! Entry points for fuzzing the option word after `-d driver`: the text
//! comes from whoever starts io-pkt or sends `mount`, so no word may crash
//! the host, and whatever is accepted must be within the documented ranges.

use iopkt_impair::{Impairment, OPTIONS as IMPAIR_OPTIONS};

use crate::options::{Common, classify, split};

/// Splits and checks `word` as the host does for a driver whose own option
/// names are `known`; returns the options passed on to the module.
pub fn parse_options(
    word: &str,
    known: &[String],
) -> Result<Vec<(String, Option<String>)>, String> {
    let (common, module) = classify(split(word)?, known)?;
    check_common(&common);
    Ok(module)
}

/// Fuzz input: an optional first line of the module's own option names
/// (comma-separated), then the option word. Panics only if the parser
/// accepted something out of range, which is a bug.
pub fn driver_options(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (known, word) = match text.split_once('\n') {
        Some((k, w)) => (
            k.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>(),
            w,
        ),
        None => (vec!["dev".to_string()], text.as_ref()),
    };

    if let Ok(pieces) = split(word) {
        for (k, v) in &pieces {
            assert!(!k.is_empty(), "split gave an option without a name");
            assert!(!k.contains(','), "option name {k:?} holds a separator");
            assert!(
                !v.as_deref().unwrap_or_default().contains(','),
                "option value {v:?} holds a separator"
            );
            // Each piece on its own through the impairment parser too.
            let mut imp = Impairment::default();
            match imp.set(k, v.as_deref()) {
                Ok(true) => check_impairment(&imp),
                Ok(false) => assert!(
                    !IMPAIR_OPTIONS.contains(&k.as_str()),
                    "impairment option {k} not recognised"
                ),
                Err(_) => assert!(
                    IMPAIR_OPTIONS.contains(&k.as_str()),
                    "non-impairment option {k} refused by the impairment parser"
                ),
            }
        }
    }

    if let Ok(module) = parse_options(word, &known) {
        for (k, _) in &module {
            assert!(
                known.contains(k),
                "option {k} passed to a module that did not declare it"
            );
        }
    }
}

/// What the host accepts for itself is within the ranges INTERFACES.md gives.
fn check_common(c: &Common) {
    if let Some(name) = &c.name {
        assert!(
            !name.is_empty() && name.len() <= 12,
            "name prefix {name:?} of bad length"
        );
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "name prefix {name:?} has a forbidden character"
        );
        assert!(
            !name.bytes().last().is_some_and(|b| b.is_ascii_digit()),
            "name prefix {name:?} ends in a digit"
        );
    }
    if let Some(unit) = c.unit {
        assert!(unit <= 65_535, "unit {unit} out of range");
    }
    if let Some(mtu) = c.mtu {
        assert!((68..=65_535).contains(&mtu), "mtu {mtu} out of range");
    }
    if let Some(mac) = c.mac {
        assert!(mac.is_unicast(), "mac {mac} is not unicast");
    }
    check_impairment(&c.impair);
}

fn check_impairment(i: &Impairment) {
    for (what, p) in [
        ("loss", i.loss),
        ("reorder", i.reorder),
        ("dup", i.dup),
        ("corrupt", i.corrupt),
    ] {
        assert!((0.0..=100.0).contains(&p), "{what}={p} out of range");
    }
    assert!(
        i.delay <= std::time::Duration::from_secs(60),
        "delay {:?} over a minute",
        i.delay
    );
}
