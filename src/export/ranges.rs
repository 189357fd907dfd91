//! Merging stored access numbers back into the ranges of an archive.

use crate::model::{AccessNumber, Media, NumberRange};

/// One stored access number of a tenant, as the export reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredNumber {
    /// The number.
    pub number: AccessNumber,
    /// Its media.
    pub media: Media,
    /// The name of its trunk, if it has one.
    pub trunk: Option<String>,
}

/// Folds numbers sorted by `(digits, value)` into ranges: a range continues while the
/// next number has the same length, the next value, the same media and the same trunk.
#[derive(Debug, Default)]
pub(super) struct RangeMerger {
    ranges: Vec<NumberRange>,
}

impl RangeMerger {
    /// Adds the next number in `(digits, value)` order.
    pub(super) fn push(&mut self, stored: StoredNumber) {
        if let Some(last) = self.ranges.last_mut() {
            let continues = last.last.digits == stored.number.digits
                && last.last.value.checked_add(1) == Some(stored.number.value)
                && last.media == stored.media
                && last.trunk == stored.trunk;
            if continues {
                last.last = stored.number;
                return;
            }
        }
        self.ranges.push(NumberRange {
            first: stored.number,
            last: stored.number,
            media: stored.media,
            trunk: stored.trunk,
        });
    }

    /// Returns the ranges built so far.
    pub(super) fn finish(self) -> Vec<NumberRange> {
        self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(text: &str, media: Media, trunk: Option<&str>) -> StoredNumber {
        StoredNumber {
            number: AccessNumber::parse(text).expect("valid number"),
            media,
            trunk: trunk.map(str::to_owned),
        }
    }

    fn merged(numbers: Vec<StoredNumber>) -> Vec<(String, String, Media, Option<String>)> {
        let mut merger = RangeMerger::default();
        for number in numbers {
            merger.push(number);
        }
        merger
            .finish()
            .into_iter()
            .map(|range| {
                (
                    range.first.to_string(),
                    range.last.to_string(),
                    range.media,
                    range.trunk,
                )
            })
            .collect()
    }

    #[test]
    fn consecutive_numbers_merge() {
        let ranges = merged(vec![
            stored("100", Media::Voice, None),
            stored("101", Media::Voice, None),
            stored("102", Media::Voice, None),
        ]);
        assert_eq!(
            ranges,
            vec![("100".into(), "102".into(), Media::Voice, None)]
        );
    }

    #[test]
    fn gap_media_trunk_and_length_split() {
        let ranges = merged(vec![
            stored("0099", Media::Voice, None),
            stored("100", Media::Voice, None),
            stored("102", Media::Voice, None),
            stored("103", Media::Text, None),
            stored("104", Media::Text, Some("carrier-a")),
            stored("105", Media::Text, Some("carrier-a")),
        ]);
        let expected = vec![
            ("0099".into(), "0099".into(), Media::Voice, None),
            ("100".into(), "100".into(), Media::Voice, None),
            ("102".into(), "102".into(), Media::Voice, None),
            ("103".into(), "103".into(), Media::Text, None),
            (
                "104".into(),
                "105".into(),
                Media::Text,
                Some("carrier-a".into()),
            ),
        ];
        assert_eq!(ranges, expected);
    }

    #[test]
    fn no_numbers_no_ranges() {
        assert!(merged(Vec::new()).is_empty());
    }
}
