//! The option word after `-d driver` (INTERFACES.md): comma-separated
//! `key=value` or bare flags. The host keeps the options common to every
//! driver and passes the rest, if the module declared them, to its init.

use iopkt_impair::Impairment;
use iopkt_wire::Mac;

/// One option as written.
pub(crate) type Opt = (String, Option<String>);

/// Options every driver gets from the host.
pub(crate) const COMMON: &[&str] = &["name", "unit", "mtu", "mac"];

/// What the host itself does with the common options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    pub name: Option<String>,
    pub unit: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub impair: Impairment,
}

/// Splits the option word; errors name the offending piece.
pub(crate) fn split(word: &str) -> Result<Vec<Opt>, String> {
    let mut out = Vec::new();
    for piece in word.split(',').map(str::trim) {
        if piece.is_empty() {
            if word.trim().is_empty() {
                break;
            }
            return Err(format!(
                "empty option in '{word}' (options are key=value or flag, separated by commas)"
            ));
        }
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (piece, None),
        };
        if k.is_empty() {
            return Err(format!("option '{piece}' has no name (expected key=value)"));
        }
        out.push((k.to_string(), v));
    }
    Ok(out)
}

fn need<'a>(key: &str, v: &'a Option<String>, what: &str) -> Result<&'a str, String> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{key} needs a value ({key}={what})")),
    }
}

/// Sorts options into the host's and the module's; `known` are the module's
/// own option names.
pub(crate) fn classify(opts: Vec<Opt>, known: &[String]) -> Result<(Common, Vec<Opt>), String> {
    let mut c = Common::default();
    let mut module = Vec::new();
    for (k, v) in opts {
        if known.contains(&k) {
            module.push((k, v));
            continue;
        }
        match k.as_str() {
            "name" => {
                let s = need(&k, &v, "PREFIX")?;
                if s.len() > 12
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "name={s}: expected up to 12 letters, digits, '-' or '_' (the unit number is appended)"
                    ));
                }
                if s.bytes().last().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "name={s}: the prefix must not end in a digit (use unit= for the number)"
                    ));
                }
                c.name = Some(s.to_string());
            }
            "unit" => {
                let s = need(&k, &v, "N")?;
                c.unit = Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|n| *n <= 65535)
                        .ok_or_else(|| format!("unit={s}: expected a number from 0 to 65535"))?,
                );
            }
            "mtu" => {
                let s = need(&k, &v, "N")?;
                c.mtu = Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|n| (68..=65535).contains(n))
                        .ok_or_else(|| format!("mtu={s}: expected a number from 68 to 65535"))?,
                );
            }
            "mac" => {
                let s = need(&k, &v, "xx:xx:xx:xx:xx:xx")?;
                let m: Mac = s.parse().map_err(|e| format!("mac={s}: {e}"))?;
                if !m.is_unicast() {
                    return Err(format!(
                        "mac={s}: must be a unicast address (first byte even, not all zero)"
                    ));
                }
                c.mac = Some(m);
            }
            _ => {
                if !c.impair.set(&k, v.as_deref())? {
                    let mut all: Vec<&str> = known.iter().map(String::as_str).collect();
                    all.extend(COMMON);
                    all.extend(iopkt_impair::OPTIONS);
                    return Err(format!("unknown option '{k}' (known: {})", all.join(", ")));
                }
            }
        }
    }
    Ok((c, module))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["dev".to_string()]
    }

    #[test]
    fn splits_pairs_and_flags() {
        let v = split("dev=x, name=en,fanout").unwrap();
        assert_eq!(
            v,
            [
                ("dev".to_string(), Some("x".to_string())),
                ("name".to_string(), Some("en".to_string())),
                ("fanout".to_string(), None)
            ]
        );
        assert!(split("").unwrap().is_empty());
        assert_eq!(
            split("=x").unwrap_err(),
            "option '=x' has no name (expected key=value)"
        );
        assert!(
            split("a,,b")
                .unwrap_err()
                .starts_with("empty option in 'a,,b'")
        );
    }

    #[test]
    fn common_options_are_checked() {
        let (c, m) = classify(
            split("dev=t0,name=en,unit=3,mtu=9000,mac=02:00:00:00:00:07,loss=5").unwrap(),
            &known(),
        )
        .unwrap();
        assert_eq!(m, [("dev".to_string(), Some("t0".to_string()))]);
        assert_eq!(
            (c.name.as_deref(), c.unit, c.mtu),
            (Some("en"), Some(3), Some(9000))
        );
        assert_eq!(c.mac.unwrap().to_string(), "02:00:00:00:00:07");
        assert_eq!(c.impair.loss, 5.0);

        let err = |w: &str| classify(split(w).unwrap(), &known()).unwrap_err();
        assert_eq!(
            err("mtu=abc"),
            "mtu=abc: expected a number from 68 to 65535"
        );
        assert_eq!(err("mtu=67"), "mtu=67: expected a number from 68 to 65535");
        assert_eq!(
            err("mac=zz"),
            "mac=zz: expected six hex bytes such as 02:00:00:00:00:01"
        );
        assert_eq!(
            err("mac=01:00:5e:00:00:01").split(':').next(),
            Some("mac=01")
        );
        assert_eq!(err("name"), "name needs a value (name=PREFIX)");
        assert_eq!(
            err("name=en0"),
            "name=en0: the prefix must not end in a digit (use unit= for the number)"
        );
        assert_eq!(
            err("bogus=1"),
            "unknown option 'bogus' (known: dev, name, unit, mtu, mac, loss, delay, reorder, dup, corrupt)"
        );
        assert_eq!(
            err("loss=200"),
            "loss=200: expected a percentage from 0 to 100"
        );
    }
}
