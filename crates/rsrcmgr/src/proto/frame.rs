//! Framing: every message is a fixed 16-byte little-endian header followed by
//! a postcard-encoded body of `body_len` bytes (docs/protocol.md).

use serde::Serialize;
use serde::de::DeserializeOwned;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::ProtoError;

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"IOPK";
/// The protocol version this crate speaks. A peer with another version is
/// answered with an error and disconnected.
pub const VERSION: u16 = 1;
/// Largest body accepted in either direction.
pub const MAX_BODY: usize = 1 << 20;
/// Size of [`Header`] on the wire.
pub const HEADER_LEN: usize = 16;

/// The fixed part of every message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Header {
    pub magic: [u8; 4],
    pub version: U16,
    pub kind: U16,
    /// Chosen by the client for a request and echoed in its response; 0 in
    /// events.
    pub request_id: U32,
    pub body_len: U32,
}

const _: () = assert!(size_of::<Header>() == HEADER_LEN);

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Client to server.
    Request = 1,
    /// Server to client, answering the request with the same id.
    Response = 2,
    /// Server to client, unsolicited (a socket has news).
    Event = 3,
}

impl Kind {
    pub fn from_wire(v: u16) -> Option<Kind> {
        match v {
            1 => Some(Kind::Request),
            2 => Some(Kind::Response),
            3 => Some(Kind::Event),
            _ => None,
        }
    }
}

/// A header that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: Kind,
    pub request_id: u32,
    pub body_len: usize,
}

/// Checks the header at the start of `bytes`; `Ok(None)` if fewer than
/// [`HEADER_LEN`] bytes are there yet.
pub fn parse_header(bytes: &[u8]) -> Result<Option<FrameHeader>, ProtoError> {
    let Some(raw) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let Ok(h) = Header::read_from_bytes(raw) else {
        return Ok(None);
    };
    if h.magic != MAGIC {
        return Err(ProtoError::BadMagic);
    }
    if h.version.get() != VERSION {
        return Err(ProtoError::Version(h.version.get()));
    }
    let kind = Kind::from_wire(h.kind.get()).ok_or(ProtoError::BadKind(h.kind.get()))?;
    let body_len = h.body_len.get() as usize;
    if body_len > MAX_BODY {
        return Err(ProtoError::TooLong(body_len));
    }
    Ok(Some(FrameHeader {
        kind,
        request_id: h.request_id.get(),
        body_len,
    }))
}

/// A whole message: header then body.
pub fn encode_frame<T: Serialize>(
    kind: Kind,
    request_id: u32,
    body: &T,
) -> Result<Vec<u8>, ProtoError> {
    let body = postcard::to_stdvec(body).map_err(|e| ProtoError::Encode(e.to_string()))?;
    if body.len() > MAX_BODY {
        return Err(ProtoError::TooLong(body.len()));
    }
    let h = Header {
        magic: MAGIC,
        version: U16::new(VERSION),
        kind: U16::new(kind as u16),
        request_id: U32::new(request_id),
        body_len: U32::new(body.len() as u32),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a body; every byte must be used.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtoError> {
    let (v, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|e| ProtoError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtoError::Decode(format!(
            "{} bytes left over after the body",
            rest.len()
        )));
    }
    Ok(v)
}

/// A message cut out of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub body: Vec<u8>,
}

/// Collects bytes from a stream and cuts them into frames. Holds at most one
/// header and one body of [`MAX_BODY`] bytes.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// How many more bytes the framer wants before it can cut the next frame
    /// (at least 1). Reading no more than this keeps the buffer bounded.
    pub fn wanted(&self) -> usize {
        match parse_header(&self.buf) {
            Ok(Some(h)) => (HEADER_LEN + h.body_len)
                .saturating_sub(self.buf.len())
                .max(1),
            _ => HEADER_LEN.saturating_sub(self.buf.len()).max(1),
        }
    }

    /// Appends received bytes. Callers read at most [`Framer::wanted`] bytes
    /// at a time.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held and not yet cut into a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if one is there. An error means the stream
    /// cannot be trusted any more (the caller answers and disconnects).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtoError> {
        let Some(h) = parse_header(&self.buf)? else {
            return Ok(None);
        };
        let end = HEADER_LEN + h.body_len;
        if self.buf.len() < end {
            return Ok(None);
        }
        let body = self.buf.get(HEADER_LEN..end).unwrap_or_default().to_vec();
        self.buf.drain(..end);
        Ok(Some(Frame { header: h, body }))
    }
}
