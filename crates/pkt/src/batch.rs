use crate::PktBuf;

/// Most packets handed over in one call between a driver and layer 2
/// (ARCHITECTURE.md, principle 3).
pub const MAX_BATCH: usize = 256;

/// Up to [`MAX_BATCH`] packets moving together through a stage.
#[derive(Debug, Default)]
pub struct Batch {
    pkts: Vec<PktBuf>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            pkts: Vec::with_capacity(MAX_BATCH),
        }
    }

    /// Adds a packet; gives it back when the batch is full.
    pub fn push(&mut self, p: PktBuf) -> Result<(), PktBuf> {
        if self.pkts.len() >= MAX_BATCH {
            return Err(p);
        }
        self.pkts.push(p);
        Ok(())
    }

    pub fn is_full(&self) -> bool {
        self.pkts.len() >= MAX_BATCH
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub fn drain(&mut self) -> std::vec::Drain<'_, PktBuf> {
        self.pkts.drain(..)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, PktBuf> {
        self.pkts.iter()
    }
}

impl IntoIterator for Batch {
    type Item = PktBuf;
    type IntoIter = std::vec::IntoIter<PktBuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.pkts.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_bounded() {
        let mut b = Batch::new();
        for _ in 0..MAX_BATCH {
            b.push(PktBuf::from_slice(b"x")).unwrap();
        }
        assert!(b.is_full());
        assert!(b.push(PktBuf::from_slice(b"y")).is_err());
        assert_eq!(b.drain().count(), MAX_BATCH);
        assert!(b.is_empty());
    }
}
