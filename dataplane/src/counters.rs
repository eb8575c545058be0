//! Counter sets for the sans-IO engines: a `DropReason` enum with one named
//! counter per reason, and a plain `Copy` struct of event counters followed
//! by the drop counters, printed as `name value` lines. [`counters!`]
//! generates both from one list, so a reason cannot lack its counter, its
//! name or its place in the listing.
//!
//! What this module does not do: atomics or sharing between threads (each
//! engine owns its counters; runners take snapshots).

/// Declares a drop-reason enum and a counter struct.
///
/// ```text
/// counters! {
///     /// Why a packet was dropped.
///     pub enum DropReason {
///         /// A doc line for the reason.
///         BadThing => bad_thing,
///     }
///     /// The engine's counters.
///     pub struct Stats {
///         /// A doc line for the event.
///         translated,
///     }
/// }
/// ```
///
/// Each `Variant => field` names the variant and its counter field; the
/// field's name is the counter's printed name. The enum gets `ALL` (the
/// listing order), `name()` and `Display`; the struct gets one `pub u64`
/// field per event then per reason, `drops`, `total_drops`, `count_drop`,
/// `iter` (events, then drops in `ALL`'s order) and `Display` (one
/// `name value` line each).
macro_rules! counters {
    (
        $(#[$reason_meta:meta])*
        pub enum $reason:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $drop_field:ident, )+
        }
        $(#[$stats_meta:meta])*
        pub struct $stats:ident {
            $( $(#[$event_meta:meta])* $event:ident, )+
        }
    ) => {
        $(#[$reason_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $reason {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $reason {
            /// Every reason, in the order the counters list them.
            pub const ALL: [$reason; [$($reason::$variant),+].len()] = [$($reason::$variant),+];

            /// The counter's name, as the runner's `stats` prints it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $reason::$variant => stringify!($drop_field), )+
                }
            }
        }

        impl core::fmt::Display for $reason {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }

        $(#[$stats_meta])*
        ///
        /// `Display` prints one `name value` line per counter, in the order
        /// of `iter`.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $stats {
            $( $(#[$event_meta])* pub $event: u64, )+
            $( #[doc = concat!("Drops counted under `", stringify!($drop_field), "`.")] pub $drop_field: u64, )+
        }

        impl $stats {
            /// The drop counter for `reason`.
            pub const fn drops(&self, reason: $reason) -> u64 {
                match reason {
                    $( $reason::$variant => self.$drop_field, )+
                }
            }

            /// Every drop counter added up.
            pub fn total_drops(&self) -> u64 {
                0 $( + self.$drop_field )+
            }

            /// Increments the drop counter for `reason`.
            pub(crate) fn count_drop(&mut self, reason: $reason) {
                let counter = match reason {
                    $( $reason::$variant => &mut self.$drop_field, )+
                };
                *counter += 1;
            }

            /// Every counter as `(name, value)`: the events first, then the
            /// drops in the order of `ALL`.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [ $( (stringify!($event), self.$event), )+ $( (stringify!($drop_field), self.$drop_field), )+ ]
                    .into_iter()
            }
        }

        impl core::fmt::Display for $stats {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                for (name, value) in self.iter() {
                    writeln!(f, "{name} {value}")?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use counters;

#[cfg(test)]
mod tests {
    #![allow(unreachable_pub)] // the generated items are `pub`, as in the engines

    counters! {
        /// Test reasons.
        pub enum Reason {
            /// First.
            Short => short,
            /// Second.
            Odd => odd_thing,
            /// Third.
            Late => late,
        }
        /// Test counters.
        pub struct Counters {
            /// Seen.
            seen,
            /// Passed.
            passed,
        }
    }

    #[test]
    fn one_counter_per_reason_listed_after_the_events() {
        let mut stats = Counters { seen: 7, passed: 1, ..Counters::default() };
        for (n, reason) in Reason::ALL.into_iter().enumerate() {
            for _ in 0..=n {
                stats.count_drop(reason);
            }
        }
        assert_eq!(Reason::ALL, [Reason::Short, Reason::Odd, Reason::Late]);
        assert_eq!(stats.drops(Reason::Odd), 2);
        assert_eq!(stats.odd_thing, 2);
        assert_eq!(stats.total_drops(), 1 + 2 + 3);
        assert_eq!(Reason::Odd.to_string(), "odd_thing");
        let listed: Vec<_> = stats.iter().collect();
        assert_eq!(listed, [("seen", 7), ("passed", 1), ("short", 1), ("odd_thing", 2), ("late", 3)]);
        assert_eq!(stats.to_string(), "seen 7\npassed 1\nshort 1\nodd_thing 2\nlate 3\n");
    }
}
