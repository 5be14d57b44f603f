//! The message protocol spoken over `<prefix>/dev/socket` (docs/protocol.md).
//!
//! A message is a 16-byte little-endian [`Header`] and a postcard body. The
//! client sends [`Request`]s, each with an id of its choosing; the server
//! answers each with one [`Response`] carrying the same id, and pushes
//! [`Event`]s (id 0) when a socket of the client has news.

pub mod errno;
mod frame;
mod messages;
mod sockets;
mod types;

use std::fmt;

pub use frame::{
    Frame, FrameHeader, Framer, HEADER_LEN, Header, Kind, MAGIC, MAX_BODY, VERSION, decode_body,
    encode_frame, parse_header,
};
pub use messages::{
    AddrOp, Event, MAX_ICMP, MAX_IFNAME, MAX_MODULE_ARG, MAX_SYSCTL_NAME, MIN_ICMP, ModuleKindWire,
    Request, Response, RingRef, RouteSpec, WireError, check_ifname,
};
pub use sockets::{
    DGRAM_HEADER_LEN, DGRAM_TRUNCATED, DgramHeader, MAX_CONGESTION_NAME, MAX_DGRAM_PAYLOAD,
    SockOptNameWire, SockOptWire, SocketInfoWire, TCPI_STATE_CLOSE, TcpInfoWire,
};
pub use types::{
    Addr4Info, Addr6Info, Addr6StateWire, CounterGroupWire, IfInfo, IfKindWire, IfStatsWire,
    MacWire, NeighborEntry, RouteInfo, StatEntry, SysctlEntry, ifflags,
};

/// What can be wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The stream does not start with [`MAGIC`]: not our protocol.
    BadMagic,
    /// The peer speaks another protocol version.
    Version(u16),
    /// An unknown message kind.
    BadKind(u16),
    /// A body longer than [`MAX_BODY`].
    TooLong(usize),
    /// Fewer bytes than the header announces.
    Truncated,
    /// A kind other than the one expected here.
    UnexpectedKind(Kind),
    /// The body is not a valid postcard encoding of the message.
    Decode(String),
    /// The body decoded but a field is out of range.
    Invalid(String),
    /// The message could not be encoded.
    Encode(String),
    /// A request variant this side does not know (a newer client).
    Unsupported(u64),
}

impl ProtoError {
    /// Whether the byte stream can still be trusted after this error (the
    /// frame boundaries are intact, only the body was bad).
    pub fn stream_intact(&self) -> bool {
        matches!(
            self,
            ProtoError::Decode(_)
                | ProtoError::Invalid(_)
                | ProtoError::UnexpectedKind(_)
                | ProtoError::Unsupported(_)
        )
    }

    /// The errno a server answers with.
    pub fn errno(&self) -> i32 {
        match self {
            ProtoError::Version(_) => errno::EPROTONOSUPPORT,
            ProtoError::TooLong(_) => errno::EMSGSIZE,
            ProtoError::Invalid(_) => errno::EINVAL,
            ProtoError::Decode(_) => errno::EBADMSG,
            ProtoError::Unsupported(_) => errno::ENOSYS,
            _ => errno::EPROTO,
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::BadMagic => f.write_str("not an iopkt message (bad magic)"),
            ProtoError::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks {VERSION})"
            ),
            ProtoError::BadKind(k) => write!(f, "unknown message kind {k}"),
            ProtoError::TooLong(n) => {
                write!(
                    f,
                    "message body of {n} bytes is over the {MAX_BODY}-byte limit"
                )
            }
            ProtoError::Truncated => f.write_str("message shorter than its header says"),
            ProtoError::UnexpectedKind(k) => write!(f, "unexpected message kind {k:?}"),
            ProtoError::Decode(e) => write!(f, "malformed message body: {e}"),
            ProtoError::Invalid(e) => write!(f, "invalid request: {e}"),
            ProtoError::Encode(e) => write!(f, "cannot encode message: {e}"),
            ProtoError::Unsupported(v) => write!(
                f,
                "request kind {v} is not supported by this server (protocol {VERSION}): update io-pkt"
            ),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Encodes a request with id `id`.
pub fn encode_request(id: u32, req: &Request) -> Result<Vec<u8>, ProtoError> {
    encode_frame(Kind::Request, id, req)
}

/// Encodes the response to request `id`.
pub fn encode_response(id: u32, resp: &Response) -> Result<Vec<u8>, ProtoError> {
    encode_frame(Kind::Response, id, resp)
}

/// Encodes an event.
pub fn encode_event(ev: &Event) -> Result<Vec<u8>, ProtoError> {
    encode_frame(Kind::Event, 0, ev)
}

/// Cuts exactly one frame out of `bytes` (header and body, nothing more).
fn split_frame(bytes: &[u8]) -> Result<(FrameHeader, &[u8]), ProtoError> {
    let h = parse_header(bytes)?.ok_or(ProtoError::Truncated)?;
    let body = bytes.get(HEADER_LEN..).ok_or(ProtoError::Truncated)?;
    if body.len() < h.body_len {
        return Err(ProtoError::Truncated);
    }
    if body.len() > h.body_len {
        return Err(ProtoError::Decode(format!(
            "{} bytes after the message",
            body.len() - h.body_len
        )));
    }
    Ok((h, body))
}

/// Decodes and validates the body of a request.
pub fn decode_request_body(body: &[u8]) -> Result<Request, ProtoError> {
    if let Some(v) = leading_varint(body)
        && v >= REQUEST_VARIANTS
    {
        return Err(ProtoError::Unsupported(v));
    }
    let req: Request = decode_body(body)?;
    req.validate().map_err(ProtoError::Invalid)?;
    Ok(req)
}

/// How many request variants this version knows (indexes `0..N`).
pub const REQUEST_VARIANTS: u64 = 38;

/// The varint (LEB128, as postcard writes enum indexes) at the start of
/// `b`, if it is well formed and fits 32 bits.
fn leading_varint(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().take(5).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes one whole request message (header and body) and validates every
/// field. Never panics, whatever the bytes: this is the fuzz target for the
/// server's input.
pub fn decode_request(bytes: &[u8]) -> Result<(u32, Request), ProtoError> {
    let (h, body) = split_frame(bytes)?;
    if h.kind != Kind::Request {
        return Err(ProtoError::UnexpectedKind(h.kind));
    }
    Ok((h.request_id, decode_request_body(body)?))
}

/// A message from the server, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Response(u32, Response),
    Event(Event),
}

/// Decodes a frame the server sent.
pub fn decode_server_frame(f: &Frame) -> Result<ServerMessage, ProtoError> {
    match f.header.kind {
        Kind::Response => Ok(ServerMessage::Response(
            f.header.request_id,
            decode_body(&f.body)?,
        )),
        Kind::Event => Ok(ServerMessage::Event(decode_body(&f.body)?)),
        k => Err(ProtoError::UnexpectedKind(k)),
    }
}

/// Decodes one whole message from the server. Never panics.
pub fn decode_server_message(bytes: &[u8]) -> Result<ServerMessage, ProtoError> {
    let (h, body) = split_frame(bytes)?;
    decode_server_frame(&Frame {
        header: h,
        body: body.to_vec(),
    })
}
