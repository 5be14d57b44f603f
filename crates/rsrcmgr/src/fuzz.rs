//! Entry points for fuzzing everything the resource manager does with a
//! client's bytes: framing, decoding and validation ([`control_request`]),
//! and then carrying the requests out on a stack ([`control_server`]), as
//! the server does but without sockets. Neither may panic, whatever the
//! bytes; a panic here is a bug the server would have too.

use std::collections::BTreeSet;

use iopkt_stack::socket::SocketId;
use iopkt_stack::{LOOPBACK_IFINDEX, Mac};

use crate::mem_host::MemHost;
use crate::proto::errno::{self, errno_of};
use crate::proto::{
    Framer, HEADER_LEN, Kind, MAX_BODY, ProtoError, Request, Response, decode_request,
    decode_request_body, decode_server_message, encode_request, encode_response, parse_header,
};
use crate::server::{MAX_SOCKETS_PER_CLIENT, StackHost, handle};

/// Requests one [`control_server`] input may carry out, so an input's run
/// time stays bounded.
pub const MAX_REQUESTS: usize = 64;

/// Decodes `data` every way the two ends of the socket do: as one whole
/// request message, as a byte stream cut into frames by a [`Framer`] fed the
/// way the server reads, and as a message from the server.
pub fn control_request(data: &[u8]) {
    if let Ok((id, req)) = decode_request(data) {
        // What decodes is valid, and survives a round trip unchanged.
        assert_eq!(req.validate(), Ok(()), "decoded request fails validation");
        match encode_request(id, &req) {
            Ok(again) => assert_eq!(
                decode_request(&again),
                Ok((id, req)),
                "request changed in a round trip"
            ),
            Err(e) => panic!("a decoded request does not encode: {e}"),
        }
    }
    let _ = parse_header(data);

    let mut framer = Framer::new();
    let mut rest = data;
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => {
                assert!(f.body.len() <= MAX_BODY, "frame body over the limit");
                if f.header.kind == Kind::Request
                    && let Err(e) = decode_request_body(&f.body)
                {
                    answer_error(f.header.request_id, &e);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                // The server answers and closes; the stream is not read on.
                assert!(
                    !e.stream_intact(),
                    "framing error {e} claims the stream is intact"
                );
                answer_error(0, &e);
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        // The server reads at most what the framer asks for.
        let wanted = framer.wanted();
        assert!(wanted >= 1, "framer wants no bytes");
        let (now, next) = rest.split_at(wanted.min(rest.len()));
        framer.push(now);
        rest = next;
        assert!(
            framer.buffered() <= HEADER_LEN + MAX_BODY,
            "framer holds {} bytes",
            framer.buffered()
        );
    }

    let _ = decode_server_message(data);
}

/// The error answer the server sends must always encode.
fn answer_error(id: u32, e: &ProtoError) {
    let resp = Response::error(e.errno(), e.to_string());
    if let Err(err) = encode_response(id, &resp) {
        panic!("error answer to {e} does not encode: {err}");
    }
}

/// Cuts `data` into frames and carries out each request on an in-memory
/// stack (`lo0` and an Ethernet `en0`) as a root client's connection would,
/// up to [`MAX_REQUESTS`].
pub fn control_server(data: &[u8]) {
    let host = MemHost::new(0);
    if host
        .add_ethernet("en0", Mac([0x02, 0, 0, 0, 0, 0x01]), 1500)
        .is_err()
    {
        panic!("a fresh stack refused en0");
    }
    let mut framer = Framer::new();
    framer.push(data);
    let mut sockets = BTreeSet::new();
    for _ in 0..MAX_REQUESTS {
        let f = match framer.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                answer_error(0, &e);
                break;
            }
        };
        let id = f.header.request_id;
        if f.header.kind != Kind::Request {
            answer_error(id, &ProtoError::UnexpectedKind(f.header.kind));
            continue;
        }
        let resp = match decode_request_body(&f.body) {
            Ok(req) => carry_out(&host, &mut sockets, req),
            Err(e) => {
                answer_error(id, &e);
                continue;
            }
        };
        // Every answer goes out: it encodes, or (too large) its error does.
        if encode_response(id, &resp).is_err()
            && let Err(e) = encode_response(
                id,
                &Response::error(errno::EMSGSIZE, "cannot send the answer"),
            )
        {
            panic!("fallback answer does not encode: {e}");
        }
        let socks: Vec<SocketId> = sockets.iter().copied().collect();
        let _ = host.ping_recv(&socks, 16);
    }
    let socks: Vec<SocketId> = sockets.into_iter().collect();
    host.socket_close(&socks);
}

/// One request, as the server's loop dispatches it for a privileged client.
fn carry_out(host: &MemHost, sockets: &mut BTreeSet<SocketId>, req: Request) -> Response {
    match req {
        Request::PingOpen { v6 } => {
            if sockets.len() >= MAX_SOCKETS_PER_CLIENT {
                return Response::error(errno::EMFILE, "too many sockets");
            }
            match host.ping_open(v6) {
                Ok(sock) => {
                    sockets.insert(sock);
                    Response::SocketOpened { sock: sock.0 }
                }
                Err(e) => Response::error(errno_of(&e), e.to_string()),
            }
        }
        Request::PingSend { sock, dst, icmp } => {
            let sock = SocketId(sock);
            if !sockets.contains(&sock) {
                return Response::error(errno::EBADF, "not open");
            }
            match host.ping_send(sock, dst, &icmp) {
                Ok(()) => Response::Ok,
                Err(e) => Response::error(errno_of(&e), e.to_string()),
            }
        }
        Request::Close { sock } => {
            let sock = SocketId(sock);
            if !sockets.remove(&sock) {
                return Response::error(errno::EBADF, "not open");
            }
            host.socket_close(&[sock]);
            Response::Ok
        }
        Request::Mount {
            kind,
            module,
            options,
            ..
        } => match host.mount(kind, &module, &options) {
            Ok(interfaces) => Response::Mounted { interfaces },
            Err(m) => Response::error(errno::EINVAL, m),
        },
        Request::DestroyInterface { ifname } => {
            match host.with_stack(|s, _| s.iface_by_name(&ifname).map(|i| i.index)) {
                None => Response::error(errno::ENXIO, "no such interface"),
                Some(LOOPBACK_IFINDEX) => Response::error(errno::EINVAL, "cannot be destroyed"),
                Some(_) => match host.destroy(&ifname) {
                    Ok(()) => Response::Ok,
                    Err(m) => Response::error(errno::EBUSY, m),
                },
            }
        }
        other => match host.with_stack(|s, c| handle::handle_stack_request(s, c, &other)) {
            Some(r) => r,
            None => panic!("request {other:?} is handled nowhere"),
        },
    }
}
