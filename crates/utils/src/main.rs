//! `iopkt`: the multi-call utility. `iopkt CMD ARGS...`, or invoked through
//! a link named after a command (`ifconfig`, `route`, ...) it acts as that
//! command. The stack is chosen by `--sock PREFIX` or the `SOCK` variable.
//!
//! Command lines follow the BSD tools, whose grammar (`-inet6`, positional
//! keywords such as `alias` and `up`, flags clustered as in `-an`) is parsed
//! here by hand rather than with a derive-based parser.

mod cmd;
mod env;
mod fail;
mod json;
mod table;

use std::path::Path;

fn main() {
    let args: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("iopkt: argument {bad:?} is not valid UTF-8");
            std::process::exit(2);
        }
    };
    std::process::exit(run(args));
}

fn run(args: Vec<String>) -> i32 {
    let argv0 = args.first().map(String::as_str).unwrap_or("iopkt");
    let invoked = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("iopkt")
        .to_string();
    let rest: Vec<String> = args.into_iter().skip(1).collect();
    let (name, rest) = if cmd::is_command(&invoked) {
        (invoked, rest)
    } else {
        let (globals_first, rest) = env::take_leading_globals(rest);
        match rest.split_first() {
            Some((c, tail)) if c == "-h" || c == "--help" || c == "help" => {
                let _ = tail;
                print!("{}", cmd::overview());
                return 0;
            }
            Some((c, tail)) => {
                let mut all = globals_first;
                all.extend(tail.iter().cloned());
                (c.clone(), all)
            }
            None => {
                eprintln!("iopkt: no command given (known: {})", cmd::names());
                return 2;
            }
        }
    };
    if !cmd::is_command(&name) {
        eprintln!("iopkt: unknown command '{name}' (known: {})", cmd::names());
        return 2;
    }
    let (env, rest) = match env::Env::from_args(rest) {
        Ok(x) => x,
        Err(f) => {
            eprintln!("{name}: {}", f.message());
            return f.exit_code();
        }
    };
    match cmd::dispatch(&name, &env, rest) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{name}: {}", f.message());
            f.exit_code()
        }
    }
}
