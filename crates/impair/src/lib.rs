//! Link impairments.
//!
//! This machine's kernel has no netem, so faults between the kernel and our
//! stack, and between stacks, come from here: every driver accepts the
//! options `loss=`, `delay=`, `reorder=`, `dup=` and `corrupt=`, and the
//! simulated network uses the same model. Each frame leaving through an
//! impaired link draws its fate independently.

use std::time::Duration;

/// The option names every driver accepts for impairments.
pub const OPTIONS: &[&str] = &["loss", "delay", "reorder", "dup", "corrupt"];

/// Extra hold of a frame picked for reordering, so the frames behind it
/// overtake it.
pub const REORDER_HOLD: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Percent of frames dropped.
    pub loss: f64,
    /// Fixed delay of every frame.
    pub delay: Duration,
    /// Percent of frames held back so that later frames pass them.
    pub reorder: f64,
    /// Percent of frames sent twice.
    pub dup: f64,
    /// Percent of frames with one bit flipped after the Ethernet header.
    pub corrupt: f64,
}

/// What happens to one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fate {
    /// One delay per copy to deliver: empty when lost, two when duplicated.
    pub copies: Vec<Duration>,
    /// Flip one bit, chosen by this random value (see [`corrupt_frame`]).
    pub corrupt: Option<u64>,
}

fn percent(key: &str, v: &str) -> Result<f64, String> {
    let p: f64 = v
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{key}={v}: expected a percentage from 0 to 100"))?;
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("{key}={v}: expected a percentage from 0 to 100"));
    }
    Ok(p)
}

impl Impairment {
    /// Applies one option; `Ok(false)` if `key` is not an impairment option.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<bool, String> {
        if !OPTIONS.contains(&key) {
            return Ok(false);
        }
        let v = value.ok_or_else(|| format!("{key} needs a value ({key}=N)"))?;
        match key {
            "loss" => self.loss = percent(key, v)?,
            "reorder" => self.reorder = percent(key, v)?,
            "dup" => self.dup = percent(key, v)?,
            "corrupt" => self.corrupt = percent(key, v)?,
            "delay" => {
                let ms: f64 = v
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| format!("delay={v}: expected milliseconds from 0 to 60000"))?;
                if !(0.0..=60_000.0).contains(&ms) {
                    return Err(format!("delay={v}: expected milliseconds from 0 to 60000"));
                }
                self.delay = Duration::from_secs_f64(ms / 1000.0);
            }
            _ => unreachable!("checked against OPTIONS"),
        }
        Ok(true)
    }

    /// No impairment at all: frames pass straight through.
    pub fn is_none(&self) -> bool {
        self.loss == 0.0
            && self.delay.is_zero()
            && self.reorder == 0.0
            && self.dup == 0.0
            && self.corrupt == 0.0
    }

    /// Draws the fate of one frame from `rng`.
    pub fn fate(&self, rng: &mut impl FnMut() -> u64) -> Fate {
        let mut hit = |pct: f64| pct > 0.0 && (rng() % 1_000_000) as f64 / 10_000.0 < pct;
        if hit(self.loss) {
            return Fate {
                copies: Vec::new(),
                corrupt: None,
            };
        }
        let mut d = self.delay;
        if hit(self.reorder) {
            d += REORDER_HOLD;
        }
        let mut copies = vec![d];
        if hit(self.dup) {
            copies.push(self.delay);
        }
        let corrupt = hit(self.corrupt).then(&mut *rng);
        Fate { copies, corrupt }
    }
}

/// Flips one bit of `frame` past its 14-byte Ethernet header, so the damage
/// reaches the IP layer's checksums rather than the frame's addressing.
pub fn corrupt_frame(frame: &mut [u8], r: u64) {
    if frame.len() <= 14 {
        return;
    }
    let span = frame.len() - 14;
    let i = 14 + (r as usize >> 3) % span;
    frame[i] ^= 1 << (r & 7);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s >> 11
        }
    }

    #[test]
    fn options_parse_and_reject() {
        let mut i = Impairment::default();
        assert_eq!(i.set("loss", Some("20")), Ok(true));
        assert_eq!(i.set("delay", Some("5")), Ok(true));
        assert_eq!(i.set("mtu", Some("5")), Ok(false));
        assert!(i.set("loss", Some("120")).is_err());
        assert!(i.set("dup", None).is_err());
        assert!(i.set("delay", Some("soon")).is_err());
        assert_eq!(i.delay, Duration::from_millis(5));
        assert!(!i.is_none());
    }

    #[test]
    fn loss_rate_is_about_right() {
        let i = Impairment {
            loss: 20.0,
            ..Default::default()
        };
        let mut r = lcg(7);
        let lost = (0..10_000)
            .filter(|_| i.fate(&mut r).copies.is_empty())
            .count();
        assert!((1_700..2_300).contains(&lost), "lost {lost} of 10000");
    }

    #[test]
    fn corruption_spares_the_ethernet_header() {
        let mut f = [0u8; 60];
        for r in 0..1000 {
            corrupt_frame(&mut f, r);
        }
        assert!(f[..14].iter().all(|b| *b == 0));
        assert!(f[14..].iter().any(|b| *b != 0));
    }
}
