//! Recognising HEIC/HEIF from its first bytes, without libheif: the `ftyp` brands, and the
//! image size its item properties declare (libheif refuses a file that is not all there,
//! and intake judges a file on its first bytes).

/// HEIF brands whose images are HEVC-coded (ISO/IEC 23008-12): `heic`/`heix` (still image),
/// `heim`/`heis` (multi-layer, scalable), `hevc`/`hevx` (sequences). `mif1`/`msf1` alone say
/// only "some HEIF", which may be AVIF: those files count when an HEVC brand is also listed.
const HEVC_BRANDS: [&[u8; 4]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];

/// Whether the file starts with an ISO-BMFF `ftyp` box naming an HEVC HEIF brand, as its
/// major brand or among the compatible ones.
pub(crate) fn is_heic(head: &[u8]) -> bool {
    if head.len() < 12 || &head[4..8] != b"ftyp" {
        return false;
    }
    let box_size = usize::try_from(u32::from_be_bytes([head[0], head[1], head[2], head[3]])).unwrap_or(0);
    // major brand (8..12), minor version (12..16), then compatible brands to the box's end.
    let brands_end = box_size.clamp(12, 4096).min(head.len());
    let major = &head[8..12];
    let compatible = head.get(16..brands_end).unwrap_or_default().chunks_exact(4);
    std::iter::once(major).chain(compatible).any(|brand| HEVC_BRANDS.iter().any(|hevc| brand == hevc.as_slice()))
}

/// The largest image size (`ispe`, as stored, before rotation) declared among a HEIF file's
/// item properties: the whole picture's, since a grid's tiles and a thumbnail are smaller.
/// Read from the `meta` box without decoding; `None` when it is not within `head`.
pub(crate) fn heif_stored_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let meta = find_box(head, b"meta")?;
    let properties = find_box(find_box(meta.get(4..)?, b"iprp")?, b"ipco")?; // meta is a full box
    let mut largest: Option<(u32, u32)> = None;
    let mut rest = properties;
    while let Some((kind, body, after)) = next_box(rest) {
        if kind == b"ispe" {
            let field = |at: usize| body.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            // version and flags (4 bytes), then width and height
            if let (Some(width), Some(height)) = (field(4), field(8)) {
                let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
                if largest.is_none_or(|seen| area((width, height)) > area(seen)) {
                    largest = Some((width, height));
                }
            }
        }
        rest = after;
    }
    largest
}

/// The body of the first box of type `kind` among the boxes in `bytes`.
fn find_box<'a>(mut bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    while let Some((found, body, after)) = next_box(bytes) {
        if found == kind {
            return Some(body);
        }
        bytes = after;
    }
    None
}

/// Splits the ISO-BMFF box at the start of `bytes` into its type, its body and what follows;
/// `None` when its header or body is not all there.
fn next_box(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let size = u64::from(u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?));
    let kind = bytes.get(4..8)?;
    let (header, size) = match size {
        0 => (8, bytes.len() as u64), // to the end of the file
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        size => (8, size),
    };
    let end = usize::try_from(size).ok()?;
    if end < header || end > bytes.len() {
        return None;
    }
    Some((kind, &bytes[header..end], &bytes[end..]))
}
