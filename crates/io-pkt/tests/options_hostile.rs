//! Command lines found by fuzzing (fuzz target `daemon_options`): each once
//! crashed the parser; they must end in a usage error or a sane result.

use io_pkt::options::Options;

fn parse(args: &[&str]) -> Result<Options, String> {
    Options::parse(args.iter().map(|s| s.to_string())).map_err(|e| e.0)
}

#[test]
fn multibyte_character_after_a_dash_is_an_unknown_option() {
    // "-\u{a1}tap": byte 2 falls inside the two-byte character.
    let err = parse(&["-\u{a1}tap", "-i3"]).unwrap_err();
    assert!(err.starts_with("unknown option -\u{a1}tap"), "{err}");
    let err = parse(&["-\u{e9}"]).unwrap_err();
    assert!(err.starts_with("unknown option -\u{e9}"), "{err}");
    // A glued value may itself hold such characters.
    let o = parse(&["-d\u{e9}x"]).unwrap();
    assert_eq!(o.drivers[0].name, "\u{e9}x");
}

#[test]
fn verbosity_saturates() {
    let many_v = format!("-{}", "v".repeat(300));
    assert_eq!(parse(&[&many_v]).unwrap().verbose, u8::MAX);
    let repeated: Vec<&str> = std::iter::repeat_n("-v", 300).collect();
    assert_eq!(parse(&repeated).unwrap().verbose, u8::MAX);
}
