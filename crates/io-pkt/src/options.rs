//! The `io-pkt` command line (INTERFACES.md):
//!
//! ```text
//! io-pkt [-d driver [options]]... [-p protocol [options]]... [-i instance] [-t threads] [-v]
//! ```
//!
//! A module's options are the one word after its name when that word does
//! not start with `-`. The grammar is QNX's, which clap does not model
//! (options that belong to the preceding `-d`/`-p`), so it is parsed here.

use std::fmt;
use std::path::PathBuf;

/// The options of the built-in stack, given with `-p tcpip`.
pub const TCPIP_OPTIONS: &[&str] = &["prefix", "forward", "forward6", "fastforward", "somaxconn"];
/// The daemon's own flags.
pub const FLAGS: &[&str] = &["-d", "-p", "-i", "-t", "-v", "-h"];

/// A module to load at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArg {
    pub name: String,
    /// The option word as given ("dev=x,name=en"), empty if none.
    pub options: String,
}

/// The stack's own settings from `-p tcpip`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpipOptions {
    pub prefix: Option<PathBuf>,
    pub forward: bool,
    pub forward6: bool,
    pub fastforward: bool,
    pub somaxconn: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    pub drivers: Vec<ModuleArg>,
    pub protocols: Vec<ModuleArg>,
    pub tcpip: TcpipOptions,
    pub instance: u32,
    /// Layer-2 worker threads; `None` means one per CPU.
    pub threads: Option<usize>,
    pub verbose: u8,
    pub help: bool,
}

/// A command-line mistake: one line naming it (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const USAGE: &str = "usage: io-pkt [-d driver [options]]... [-p protocol [options]]... [-i instance] [-t threads] [-v]";

/// Splits an option word into `(key, value)` pairs: `a=1,b` gives
/// `[("a", Some("1")), ("b", None)]`. Empty keys are errors.
pub fn split_options(word: &str) -> Result<Vec<(&str, Option<&str>)>, String> {
    let mut out = Vec::new();
    if word.is_empty() {
        return Ok(out);
    }
    for item in word.split(',') {
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        if k.is_empty() {
            return Err(format!(
                "malformed option '{item}' in '{word}' (expected key=value or flag)"
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// The value of option `k`, which must have a non-empty one.
fn need<'a>(k: &str, v: Option<&'a str>) -> Result<&'a str, UsageError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| UsageError(format!("-p tcpip: option '{k}' needs a value ({k}=...)")))
}

fn parse_tcpip(word: &str, t: &mut TcpipOptions) -> Result<(), UsageError> {
    for (k, v) in split_options(word).map_err(|e| UsageError(format!("-p tcpip: {e}")))? {
        let no_value = |v: Option<&str>| match v {
            None => Ok(()),
            Some(_) => Err(UsageError(format!("-p tcpip: option '{k}' takes no value"))),
        };
        match k {
            "prefix" => {
                let p = need(k, v)?;
                if !p.starts_with('/') {
                    return Err(UsageError(format!(
                        "-p tcpip: prefix={p} must be an absolute path"
                    )));
                }
                t.prefix = Some(PathBuf::from(p));
            }
            "forward" => {
                no_value(v)?;
                t.forward = true
            }
            "forward6" => {
                no_value(v)?;
                t.forward6 = true
            }
            "fastforward" => {
                no_value(v)?;
                t.fastforward = true
            }
            "somaxconn" => {
                let s = need(k, v)?;
                let n: u32 = s
                    .parse()
                    .ok()
                    .filter(|n| (1..=65_535).contains(n))
                    .ok_or_else(|| {
                        UsageError(format!("-p tcpip: somaxconn={s}: expected 1 to 65535"))
                    })?;
                t.somaxconn = Some(n);
            }
            _ => {
                return Err(UsageError(format!(
                    "-p tcpip: unknown option '{k}' (known: {})",
                    TCPIP_OPTIONS.join(", ")
                )));
            }
        }
    }
    Ok(())
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, UsageError> {
        let args: Vec<String> = args.into_iter().collect();
        let mut o = Options::default();
        let mut i = 0;
        // The option word after a module name, if there is one.
        let take_word = |i: &mut usize| -> String {
            match args.get(*i + 1) {
                Some(w) if !w.starts_with('-') => {
                    *i += 1;
                    w.clone()
                }
                _ => String::new(),
            }
        };
        while i < args.len() {
            let a = args[i].as_str();
            // QNX style also allows the value glued on: -dtap, -t2.
            // A multi-byte character after the dash is no flag of ours: the
            // whole word is then reported as unknown.
            let (flag, glued) = match a.split_at_checked(2) {
                Some((f, g)) if f.starts_with('-') && !g.is_empty() && !a.starts_with("--") => {
                    (f, Some(g.to_string()))
                }
                _ => (a, None),
            };
            let value = |i: &mut usize, glued: Option<String>| -> Result<String, UsageError> {
                if let Some(g) = glued {
                    return Ok(g);
                }
                *i += 1;
                args.get(*i)
                    .cloned()
                    .ok_or_else(|| UsageError(format!("option {flag} needs an argument")))
            };
            match flag {
                "-d" | "-p" => {
                    let name = value(&mut i, glued)?;
                    if name.is_empty() || name.starts_with('-') {
                        return Err(UsageError(format!("option {flag} needs a module name")));
                    }
                    let options = take_word(&mut i);
                    if flag == "-p" && name == "tcpip" {
                        parse_tcpip(&options, &mut o.tcpip)?;
                    } else {
                        split_options(&options)
                            .map_err(|e| UsageError(format!("{flag} {name}: {e}")))?;
                        let m = ModuleArg { name, options };
                        if flag == "-d" {
                            o.drivers.push(m)
                        } else {
                            o.protocols.push(m)
                        }
                    }
                }
                "-i" => {
                    let v = value(&mut i, glued)?;
                    o.instance = v.parse().ok().filter(|n| *n < 1000).ok_or_else(|| {
                        UsageError(format!("-i {v}: expected an instance number from 0 to 999"))
                    })?;
                }
                "-t" => {
                    let v = value(&mut i, glued)?;
                    let n: usize = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=256).contains(n))
                        .ok_or_else(|| {
                            UsageError(format!("-t {v}: expected a thread count from 1 to 256"))
                        })?;
                    o.threads = Some(n);
                }
                "-v" => {
                    o.verbose = o.verbose.saturating_add(1);
                    // -vvv
                    if let Some(g) = glued {
                        if g.chars().all(|c| c == 'v') {
                            let more = u8::try_from(g.len()).unwrap_or(u8::MAX);
                            o.verbose = o.verbose.saturating_add(more);
                        } else {
                            return Err(unknown(a));
                        }
                    }
                }
                "-h" | "--help" => o.help = true,
                _ => return Err(unknown(a)),
            }
            i += 1;
        }
        Ok(o)
    }
}

fn unknown(a: &str) -> UsageError {
    if a.starts_with('-') {
        UsageError(format!("unknown option {a} (known: {})", FLAGS.join(", ")))
    } else {
        UsageError(format!(
            "unexpected argument '{a}': module options follow their -d/-p as one comma-separated word"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, UsageError> {
        Options::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn the_acceptance_command_line() {
        let o = p("-d tap dev=xtap,name=en -p tcpip prefix=/tmp/X").unwrap();
        assert_eq!(
            o.drivers,
            vec![ModuleArg {
                name: "tap".into(),
                options: "dev=xtap,name=en".into()
            }]
        );
        assert_eq!(o.tcpip.prefix, Some(PathBuf::from("/tmp/X")));
        assert_eq!(o.instance, 0);
    }

    #[test]
    fn modules_without_options_threads_instance_verbose() {
        let o = p("-d pair -d udp mcast=239.1.1.1:5000 -t 2 -i 3 -v -p tcpip forward,forward6")
            .unwrap();
        assert_eq!(o.drivers.len(), 2);
        assert_eq!(o.drivers[0].options, "");
        assert_eq!(o.threads, Some(2));
        assert_eq!(o.instance, 3);
        assert_eq!(o.verbose, 1);
        assert!(o.tcpip.forward && o.tcpip.forward6);
        let o = p("-dtap -t2 -vv").unwrap();
        assert_eq!(o.drivers[0].name, "tap");
        assert_eq!(o.threads, Some(2));
        assert_eq!(o.verbose, 2);
    }

    #[test]
    fn mistakes_name_themselves() {
        let e = p("-x").unwrap_err().0;
        assert!(
            e.contains("unknown option -x") && e.contains("-d, -p"),
            "{e}"
        );
        let e = p("-p tcpip bogus=1").unwrap_err().0;
        assert!(
            e.contains("unknown option 'bogus'") && e.contains("prefix"),
            "{e}"
        );
        assert!(p("-t 0").unwrap_err().0.contains("-t 0"));
        assert!(p("-t").unwrap_err().0.contains("needs an argument"));
        assert!(p("-d").unwrap_err().0.contains("needs an argument"));
        assert!(
            p("-p tcpip prefix=relative")
                .unwrap_err()
                .0
                .contains("absolute")
        );
        assert!(p("-d tap ,=x").unwrap_err().0.contains("malformed option"));
        assert!(
            p("-p tcpip somaxconn=lots")
                .unwrap_err()
                .0
                .contains("somaxconn=lots")
        );
        assert!(
            p("-p tcpip forward=1")
                .unwrap_err()
                .0
                .contains("takes no value")
        );
        assert!(
            p("stray")
                .unwrap_err()
                .0
                .contains("unexpected argument 'stray'")
        );
    }
}
