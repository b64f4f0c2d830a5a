//! gzip for `/metrics` without recompressing megabytes per scrape: the
//! snapshot's exposition is deflated once (ending on a sync flush, not
//! final), and each response appends a small final block with the
//! per-request self-metrics, plus the CRC and length of the whole. One valid
//! gzip member: decoders see one stream.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// The deflated, not yet finished, start of a gzip stream.
#[derive(Clone, Debug)]
pub(crate) struct Prefix {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

/// gzip header: no name, no mtime, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn deflate(data: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() / 8 + 64);
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .unwrap_or(Status::StreamEnd);
        let done_input = c.total_in() as usize == data.len();
        let room_left = out.capacity() > out.len();
        match (flush, status) {
            (FlushCompress::Finish, Status::StreamEnd) => break,
            // A sync flush is complete once all input is in and the
            // compressor stopped short of filling the buffer.
            (FlushCompress::Sync, _) if done_input && room_left => break,
            _ => {}
        }
    }
    out
}

/// Deflates `data` once; [`finish`] completes a stream per response.
pub(crate) fn prefix(data: &[u8]) -> Prefix {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Prefix {
        deflate: Bytes::from(deflate(data, FlushCompress::Sync)),
        crc: crc.finalize(),
        len: data.len() as u64,
    }
}

/// The parts of one gzip stream: header, the shared prefix, then `tail`
/// deflated as the final block with the trailer.
pub(crate) fn finish(p: &Prefix, tail: &[u8]) -> [Bytes; 3] {
    let mut crc = crc32fast::Hasher::new_with_initial_len(p.crc, p.len);
    crc.update(tail);
    let mut end = deflate(tail, FlushCompress::Finish);
    end.extend_from_slice(&crc.finalize().to_le_bytes());
    end.extend_from_slice(&((p.len + tail.len() as u64) as u32).to_le_bytes());
    [
        Bytes::from_static(&HEADER),
        p.deflate.clone(),
        Bytes::from(end),
    ]
}

/// Whether an `Accept-Encoding` value accepts gzip (`q=0` refuses it).
pub(crate) fn accepted(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(parts: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        let mut out = Vec::new();
        // A plain (single-member) decoder: the response is one gzip member.
        flate2::read::GzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn prefix_plus_tail_is_one_valid_gzip_stream() {
        let body: String = (0..20_000)
            .map(|i| {
                format!(
                    "eks_ipam_node_pods{{node=\"ip-10-0-{}-{}\"}} {}\n",
                    i / 250,
                    i % 250,
                    i % 31
                )
            })
            .collect();
        let p = prefix(body.as_bytes());
        for tail in ["", "eks_ipam_http_requests_total{handler=\"metrics\"} 7\n"] {
            let parts = finish(&p, tail.as_bytes());
            assert_eq!(gunzip(&parts), format!("{body}{tail}").into_bytes());
        }
        assert!(
            p.deflate.len() < body.len() / 5,
            "compressed {} of {}",
            p.deflate.len(),
            body.len()
        );
    }

    #[test]
    fn empty_body_and_binary_tail() {
        let p = prefix(b"");
        let tail: Vec<u8> = (0..=255u8).collect();
        assert_eq!(gunzip(&finish(&p, &tail)), tail);
    }

    #[test]
    fn accept_encoding_parsing() {
        for (h, want) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("deflate, GZIP;q=0.5", true),
            ("gzip;q=0", false),
            ("identity", false),
            ("", false),
            ("*", true),
            ("br;q=1, gzip ; q=0.0", false),
        ] {
            assert_eq!(accepted(h), want, "{h:?}");
        }
    }
}
