//! Unauthenticated traffic, limited per source address. A post that proves
//! nothing (no valid signature, an unknown hook, a body too big or too
//! slow, a replay) is a refusal charged to the address it came from, never
//! to the hook: past [`REFUSALS_PER_MINUTE`] in a clock minute the address
//! is answered 429 before its body is read or anything is looked up, while
//! a signed delivery from elsewhere goes through. And one address may have
//! at most [`IN_FLIGHT_PER_SOURCE`] posts being handled at once, so that
//! slow bodies from one place cannot take every turn of the hooks.
//!
//! Kept in this process's memory: each replica counts on its own, which
//! still bounds what an address costs it.

use crate::infra::sync::lock;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// Refusals one address may earn per clock minute before it is cut off.
pub const REFUSALS_PER_MINUTE: u32 = 30;

/// Posts from one address handled at once.
pub const IN_FLIGHT_PER_SOURCE: u32 = 4;

/// Addresses tracked at most; past it, new ones share one standing, so a
/// flood from many addresses cannot grow the table without bound.
const MAX_SOURCES: usize = 10_000;

/// Where a post came from: its IPv4 address, or the /64 of an IPv6 one
/// (what one host is usually given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// The standing shared by addresses past [`MAX_SOURCES`], and by posts
    /// whose address is unknown.
    pub const SHARED: Source = Source(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

/// Why an address is turned away before its post is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnedAway {
    TooManyRefusals,
    TooManyInFlight,
}

#[derive(Debug, Default)]
struct Standing {
    /// The clock minute `refused` counts in.
    minute: i64,
    refused: u32,
    in_flight: u32,
}

#[derive(Debug, Default)]
pub struct Sources {
    table: Mutex<HashMap<Source, Standing>>,
}

impl Sources {
    /// Lets a post from `source` in during clock minute `minute`, or says
    /// why not. The turn lasts until the returned value is dropped.
    pub fn enter(self: &Arc<Self>, source: Source, minute: i64) -> Result<SourceTurn, TurnedAway> {
        let mut table = self.table();
        let source = if table.contains_key(&source) || table.len() < MAX_SOURCES {
            source
        } else {
            table.retain(|_, standing| standing.in_flight > 0 || standing.minute == minute);
            if table.len() < MAX_SOURCES {
                source
            } else {
                Source::SHARED
            }
        };
        let standing = table.entry(source).or_default();
        if standing.minute != minute {
            standing.minute = minute;
            standing.refused = 0;
        }
        if standing.refused >= REFUSALS_PER_MINUTE {
            return Err(TurnedAway::TooManyRefusals);
        }
        if standing.in_flight >= IN_FLIGHT_PER_SOURCE {
            return Err(TurnedAway::TooManyInFlight);
        }
        standing.in_flight += 1;
        Ok(SourceTurn {
            sources: self.clone(),
            source,
        })
    }

    /// A poisoned lock still holds counts worth keeping.
    fn table(&self) -> MutexGuard<'_, HashMap<Source, Standing>> {
        lock(&self.table)
    }
}

/// One post being handled for its source.
#[derive(Debug)]
pub struct SourceTurn {
    sources: Arc<Sources>,
    source: Source,
}

impl SourceTurn {
    /// Charges a refusal to the post's address.
    pub fn refused(&self) {
        if let Some(standing) = self.sources.table().get_mut(&self.source) {
            standing.refused = standing.refused.saturating_add(1);
        }
    }
}

impl Drop for SourceTurn {
    fn drop(&mut self) {
        if let Some(standing) = self.sources.table().get_mut(&self.source) {
            standing.in_flight = standing.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Source {
        Source::of(text.parse().unwrap())
    }

    #[test]
    fn refusals_cut_off_only_their_own_address_until_the_minute_ends() {
        let sources = Arc::new(Sources::default());
        for _ in 0..REFUSALS_PER_MINUTE {
            sources.enter(address("192.0.2.1"), 7).unwrap().refused();
        }
        assert_eq!(
            sources.enter(address("192.0.2.1"), 7).unwrap_err(),
            TurnedAway::TooManyRefusals
        );
        assert!(sources.enter(address("192.0.2.2"), 7).is_ok());
        assert!(sources.enter(address("192.0.2.1"), 8).is_ok());
    }

    #[test]
    fn an_address_has_a_few_posts_in_flight_at_most() {
        let sources = Arc::new(Sources::default());
        let turns: Vec<_> = (0..IN_FLIGHT_PER_SOURCE)
            .map(|_| sources.enter(address("192.0.2.1"), 1).unwrap())
            .collect();
        assert_eq!(
            sources.enter(address("192.0.2.1"), 1).unwrap_err(),
            TurnedAway::TooManyInFlight
        );
        drop(turns);
        assert!(sources.enter(address("192.0.2.1"), 1).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_its_64_and_a_mapped_ipv4_is_itself() {
        assert_eq!(address("2001:db8:1:2::1"), address("2001:db8:1:2:ffff::9"));
        assert_ne!(address("2001:db8:1:2::1"), address("2001:db8:1:3::1"));
        assert_eq!(address("::ffff:192.0.2.1"), address("192.0.2.1"));
    }

    #[test]
    fn a_table_full_of_addresses_this_minute_shares_one_standing() {
        let sources = Arc::new(Sources::default());
        for n in 0..MAX_SOURCES as u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            drop(sources.enter(Source::of(ip), 1).unwrap());
        }
        let turn = sources.enter(address("192.0.2.1"), 1).unwrap();
        assert_eq!(turn.source, Source::SHARED);
        drop(turn);
        // A new minute makes room again.
        let turn = sources.enter(address("192.0.2.1"), 2).unwrap();
        assert_eq!(turn.source, address("192.0.2.1"));
    }
}
