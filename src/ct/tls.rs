//! A reader for the TLS presentation-language encoding (RFC 5246 §4) that RFC 6962 uses for
//! its structures: big-endian integers and length-prefixed vectors.

/// Reads TLS-encoded fields from a byte slice; every read fails cleanly at the end of input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

/// What a read failed on: the field being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Short(pub &'static str);

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Short> {
        if self.data.len() < n {
            return Err(Short(what));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    /// A big-endian unsigned integer of `n` (at most 8) bytes.
    pub(crate) fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, Short> {
        Ok(self
            .bytes(n, what)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A vector whose length is a big-endian integer of `len_bytes` bytes.
    pub(crate) fn vec(&mut self, len_bytes: usize, what: &'static str) -> Result<&'a [u8], Short> {
        let n = self.uint(len_bytes, what)?;
        let n = usize::try_from(n).map_err(|_| Short(what))?;
        self.bytes(n, what)
    }

    /// A fixed 32-byte array.
    pub(crate) fn hash(&mut self, what: &'static str) -> Result<[u8; 32], Short> {
        let b = self.bytes(32, what)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(b);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_and_vectors_and_stops_at_the_end() {
        let mut r = Reader::new(&[0, 1, 2, 0, 2, 0xaa, 0xbb, 9]);
        assert_eq!(r.uint(3, "a"), Ok(0x0102));
        assert_eq!(r.vec(2, "b"), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(r.vec(1, "c"), Err(Short("c")));
    }
}
