//! The entropy-coded data of a scan: Huffman tables and the bit reader.

/// A Huffman table: codes of up to 9 bits are looked up at once, longer ones by length.
pub(super) struct Huffman {
    /// For each 9-bit prefix: `length << 8 | symbol`, or 0 when the code is longer.
    lookup: Vec<u16>,
    /// For each length 1..=16: the largest code of that length (−1 if none), and what to add
    /// to a code of that length to get its symbol's index.
    max_code: [i32; 18],
    offset: [i32; 18],
    symbols: Vec<u8>,
}

pub(super) const LOOKUP_BITS: u32 = 9;

impl Huffman {
    pub(super) fn new(counts: &[u8], symbols: &[u8]) -> Option<Self> {
        let mut table =
            Self { lookup: vec![0; 1 << LOOKUP_BITS], max_code: [-1; 18], offset: [0; 18], symbols: symbols.to_vec() };
        let (mut code, mut index) = (0u32, 0usize);
        for length in 1..=16u32 {
            let count = usize::from(counts[length as usize - 1]);
            table.offset[length as usize] = index as i32 - code as i32;
            for _ in 0..count {
                if length <= LOOKUP_BITS {
                    let first = (code << (LOOKUP_BITS - length)) as usize;
                    let entry = (length as u16) << 8 | u16::from(*symbols.get(index)?);
                    table.lookup.get_mut(first..first + (1 << (LOOKUP_BITS - length)))?.fill(entry);
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                table.max_code[length as usize] = code as i32 - 1;
            }
            // More codes of this length than it has room for: not a prefix code.
            if code > 1 << length {
                return None;
            }
            code <<= 1;
        }
        (index == symbols.len()).then_some(table)
    }
}

/// The entropy-coded bits of a scan, most significant first, with stuffed bytes removed.
/// At a marker (the scan's end) it reads zeros, and counts them: a scan that needs them
/// ran out of data, which [`Bits::overran`] reports.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    /// The next bits, left-aligned; `count` of them are valid.
    buffer: u64,
    count: u32,
    /// How many of the valid bits are zeros made up past the data's end.
    made_up: u32,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8], at: usize) -> Self {
        Self { data, at, buffer: 0, count: 0, made_up: 0 }
    }

    #[inline]
    fn fill(&mut self) {
        while self.count <= 56 {
            let byte = match self.data.get(self.at) {
                Some(0xFF) if self.data.get(self.at + 1) == Some(&0x00) => {
                    self.at += 2;
                    0xFF
                }
                Some(0xFF) | None => {
                    self.made_up += 8;
                    0
                }
                Some(&byte) => {
                    self.at += 1;
                    byte
                }
            };
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    #[inline]
    pub(super) fn bits(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.fill();
        }
        let value = (self.buffer >> (64 - n)) as i32;
        self.buffer <<= n;
        self.count -= n;
        value
    }

    #[inline]
    pub(super) fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }

    #[inline]
    pub(super) fn decode(&mut self, table: &Huffman) -> Option<u8> {
        if self.count < 16 {
            self.fill();
        }
        let entry = table.lookup[(self.buffer >> (64 - LOOKUP_BITS)) as usize];
        if entry != 0 {
            let length = u32::from(entry >> 8);
            self.buffer <<= length;
            self.count -= length;
            return Some(entry as u8);
        }
        for length in LOOKUP_BITS + 1..=16 {
            let code = (self.buffer >> (64 - length)) as i32;
            if code <= table.max_code[length as usize] {
                self.buffer <<= length;
                self.count -= length;
                return table.symbols.get(usize::try_from(code + table.offset[length as usize]).ok()?).copied();
            }
        }
        None
    }

    /// Whether the scan has used bits past its data.
    pub(super) fn overran(&self) -> bool {
        self.made_up > self.count
    }

    /// At a restart interval's end: drop the partial byte and step over the RSTn marker.
    pub(super) fn restart(&mut self) -> Option<()> {
        if self.overran() {
            return None;
        }
        (self.buffer, self.count, self.made_up) = (0, 0, 0);
        while self.data.get(self.at) == Some(&0xFF) && self.data.get(self.at + 1) == Some(&0xFF) {
            self.at += 1; // fill bytes
        }
        match (self.data.get(self.at), self.data.get(self.at + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                self.at += 2;
                Some(())
            }
            _ => None,
        }
    }

    /// Before unit `unit` (a block or an MCU) of a scan: steps over the restart marker that
    /// ends an interval (`Some(true)`: the caller resets its predictors or run) and gives up
    /// data that ran out at once, not read as zeros to the last block.
    pub(super) fn begin_unit(&mut self, unit: usize, restart_interval: usize) -> Option<bool> {
        let restarts = restart_interval > 0 && unit > 0 && unit % restart_interval == 0;
        if restarts {
            self.restart()?;
        }
        (!self.overran()).then_some(restarts)
    }

    /// Where the scan's data ends, once decoded: `None` if it needed more than there was.
    pub(super) fn end(&self) -> Option<usize> {
        (!self.overran()).then_some(self.at)
    }
}

pub(super) fn extend(value: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if value < 1 << (size - 1) {
        value - (1 << size) + 1
    } else {
        value
    }
}
