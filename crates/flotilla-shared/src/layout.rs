//! Pure arithmetic: where things sit in a shared segment, and when a timed lock gives up.
//!
//! Nothing here touches the operating system, so its tests run under Miri.

use std::time::Duration;

/// The largest alignment a shared element may ask for: a mapping starts on a page boundary,
/// and the smallest page on Linux is 4 KiB.
pub(crate) const MAX_ALIGN: usize = 4096;

/// Where the data starts in a segment and how long the segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Offset of the first element from the start of the segment.
    pub(crate) data: usize,
    /// Length of the segment in bytes; never 0, since an empty mapping cannot exist.
    pub(crate) total: usize,
}

/// The layout of a segment holding a `header`-byte header followed by `count` elements of
/// `size` bytes aligned to `align`; `None` if it would not fit in the address space or the
/// alignment is not a power of two no larger than [`MAX_ALIGN`].
pub(crate) fn layout(header: usize, size: usize, align: usize, count: usize) -> Option<Layout> {
    if !align.is_power_of_two() || align > MAX_ALIGN {
        return None;
    }
    let data = header.checked_next_multiple_of(align)?;
    let total = data.checked_add(size.checked_mul(count)?)?.max(1);
    if total > isize::MAX as usize {
        return None;
    }
    Some(Layout { data, total })
}

/// The absolute deadline `wait` after `now` (seconds and nanoseconds of a clock), saturating
/// at the largest representable time instead of wrapping into the past.
pub(crate) fn deadline(now: (i64, i64), wait: Duration) -> (i64, i64) {
    let (secs, nanos) = now;
    let wait_secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
    let mut nanos = nanos + i64::from(wait.subsec_nanos());
    let mut carry = 0;
    if nanos >= 1_000_000_000 {
        nanos -= 1_000_000_000;
        carry = 1;
    }
    match secs
        .checked_add(wait_secs)
        .and_then(|s| s.checked_add(carry))
    {
        Some(secs) => (secs, nanos),
        None => (i64::MAX, 999_999_999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_follows_the_header_at_its_alignment() {
        assert_eq!(
            layout(44, 8, 8, 3),
            Some(Layout {
                data: 48,
                total: 72
            })
        );
        assert_eq!(
            layout(44, 1, 1, 3),
            Some(Layout {
                data: 44,
                total: 47
            })
        );
        assert_eq!(layout(0, 4, 4, 2), Some(Layout { data: 0, total: 8 }));
    }

    #[test]
    fn empty_segments_still_have_a_byte() {
        assert_eq!(layout(0, 8, 8, 0), Some(Layout { data: 0, total: 1 }));
        assert_eq!(layout(0, 0, 1, 1000), Some(Layout { data: 0, total: 1 }));
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert_eq!(layout(0, 8, 3, 1), None);
        assert_eq!(layout(0, 8, MAX_ALIGN * 2, 1), None);
        assert_eq!(layout(0, usize::MAX, 8, 2), None);
        assert_eq!(layout(usize::MAX, 1, 8, 1), None);
        assert_eq!(layout(0, 1, 1, isize::MAX as usize + 1), None);
    }

    #[test]
    fn deadlines_carry_nanoseconds() {
        assert_eq!(
            deadline((10, 999_999_999), Duration::from_nanos(2)),
            (11, 1)
        );
        assert_eq!(
            deadline((10, 5), Duration::from_millis(1500)),
            (11, 500_000_005)
        );
        assert_eq!(deadline((10, 5), Duration::ZERO), (10, 5));
    }

    #[test]
    fn deadlines_saturate() {
        assert_eq!(deadline((5, 0), Duration::MAX), (i64::MAX, 999_999_999));
        assert_eq!(
            deadline((i64::MAX, 999_999_999), Duration::from_nanos(1)),
            (i64::MAX, 999_999_999)
        );
    }
}
