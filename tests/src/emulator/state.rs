//! The emulator's shared state: device codes, token families, faults and counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CounterSet, Counters, EmulatorConfig, ExpiryEncoding, Fault, MessagesRequestRecord};

/// How many messages requests [`Counters::recent_messages_requests`] keeps.
const RECENT_MESSAGES: usize = 64;

/// Milliseconds since the unix epoch, by the wall clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Writes a deadline the way the configuration asks.
pub(crate) fn encode_expiry(encoding: ExpiryEncoding, deadline_ms: i64, now_ms: i64) -> i64 {
    match encoding {
        ExpiryEncoding::UnixMs => deadline_ms,
        ExpiryEncoding::UnixSeconds => deadline_ms.div_euclid(1000),
        // Rounded up: a client would reject a 0 TTL as "not a positive integer" although the
        // token is still valid for a moment.
        ExpiryEncoding::TtlSeconds => (deadline_ms.saturating_sub(now_ms) + 999).div_euclid(1000),
    }
}

/// A MiniMax region; each has its own codes, tokens and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Region {
    Global,
    Cn,
}

impl Region {
    pub(crate) const ALL: [Region; 2] = [Region::Global, Region::Cn];

    pub(crate) fn parse(s: &str) -> Option<Region> {
        if s.eq_ignore_ascii_case("global") {
            Some(Region::Global)
        } else if s.eq_ignore_ascii_case("cn") {
            Some(Region::Cn)
        } else {
            None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Region::Global => "global",
            Region::Cn => "cn",
        }
    }

    /// The path prefix the region is served under.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Region::Global => "",
            Region::Cn => "/cn",
        }
    }

    /// Splits a request path into its region and the path inside the region.
    pub(crate) fn split(path: &str) -> (Region, &str) {
        match path.strip_prefix("/cn") {
            Some("") => (Region::Cn, "/"),
            Some(rest) if rest.starts_with('/') => (Region::Cn, rest),
            _ => (Region::Global, path),
        }
    }

    fn index(self) -> usize {
        match self {
            Region::Global => 0,
            Region::Cn => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeStatus {
    Pending,
    Approved,
    Denied,
    /// Tokens were issued; the code cannot be exchanged again.
    Exchanged,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub(crate) challenge: String,
    pub(crate) expires_at_ms: i64,
    pub(crate) status: CodeStatus,
    /// Polls answered `pending` so far, for `approve_after_polls`.
    pub(crate) pending_answers: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessGrant {
    family: u64,
    expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) family: u64,
    pub(crate) used: bool,
}

/// Everything one region knows.
#[derive(Debug, Default)]
pub(crate) struct RegionState {
    pub(crate) codes: HashMap<String, DeviceCode>,
    access: HashMap<String, AccessGrant>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    /// Families (one per login) revoked by refresh-token reuse.
    revoked_families: HashSet<u64>,
    pub(crate) counters: CounterSet,
}

impl RegionState {
    pub(crate) fn family_revoked(&self, family: u64) -> bool {
        self.revoked_families.contains(&family)
    }
}

#[derive(Debug, Clone)]
struct FaultRule {
    suffix: String,
    fault: Fault,
    remaining: u32,
}

/// Outcome of presenting a refresh token.
pub(crate) enum RefreshOutcome {
    Rotated {
        access: String,
        refresh: Option<String>,
        access_expires_at_ms: i64,
    },
    Reused,
    InvalidGrant,
}

/// splitmix64: plenty for unguessable-enough test tokens without another dependency.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // Mixing in a stack address keeps two emulators started in the same nanosecond apart.
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Rng((nanos as u64) ^ addr.rotate_left(32) ^ u64::from(std::process::id()))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| {
                let i = (self.next_u64() % alphabet.len() as u64) as usize;
                char::from(alphabet[i])
            })
            .collect()
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// No 0/O or 1/I: user codes are read and typed by people.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The state behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    regions: [RegionState; 2],
    faults: Vec<FaultRule>,
    pub(crate) api_keys: HashSet<String>,
    pub(crate) rng: Rng,
    messages: VecDeque<MessagesRequestRecord>,
    next_family: u64,
    /// When the last refresh rotated a pair.
    pub(crate) last_rotation: Option<std::time::Instant>,
}

impl State {
    /// The emulator's clock: the wall clock moved by `clock_offset_ms` and the shared test
    /// clock of `clock_file`, so tests can age tokens and codes without sleeping.
    pub(crate) fn now_ms(&self) -> i64 {
        let shared = self
            .config
            .clock_file
            .as_ref()
            .map_or(0, |f| hermes::timefmt::TestClock::new(f).offset_ms());
        now_ms()
            .saturating_add(self.config.clock_offset_ms)
            .saturating_add(shared)
    }

    pub(crate) fn region(&self, region: Region) -> &RegionState {
        &self.regions[region.index()]
    }

    pub(crate) fn region_mut(&mut self, region: Region) -> &mut RegionState {
        &mut self.regions[region.index()]
    }

    pub(crate) fn counters_mut(&mut self, region: Region) -> &mut CounterSet {
        &mut self.region_mut(region).counters
    }

    pub(crate) fn counters(&self) -> Counters {
        let global = self.region(Region::Global).counters;
        let cn = self.region(Region::Cn).counters;
        Counters {
            total: global.plus(&cn),
            global,
            cn,
            last_messages_request: self.messages.back().cloned(),
            recent_messages_requests: self.messages.iter().cloned().collect(),
            in_flight: 0,
        }
    }

    pub(crate) fn record_messages_request(&mut self, record: MessagesRequestRecord) {
        if self.messages.len() == RECENT_MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back(record);
    }

    pub(crate) fn token(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", self.rng.string(BASE62, 40))
    }

    /// A fresh user code, unique across both regions.
    pub(crate) fn new_user_code(&mut self) -> String {
        loop {
            let raw = self.rng.string(USER_CODE_ALPHABET, 8);
            let code = format!("{}-{}", &raw[..4], &raw[4..]);
            if self.find_code(&code).is_none() {
                return code;
            }
        }
    }

    fn find_code(&self, user_code: &str) -> Option<Region> {
        Region::ALL
            .into_iter()
            .find(|r| self.region(*r).codes.contains_key(user_code))
    }

    fn decide(&mut self, user_code: &str, to: CodeStatus) -> bool {
        let Some(region) = self.find_code(user_code) else {
            return false;
        };
        let now = self.now_ms();
        let rs = self.region_mut(region);
        let Some(code) = rs.codes.get_mut(user_code) else {
            return false;
        };
        if code.status != CodeStatus::Pending || code.expires_at_ms <= now {
            return false;
        }
        code.status = to;
        if to == CodeStatus::Approved {
            rs.counters.logins_approved += 1;
        } else {
            rs.counters.logins_denied += 1;
        }
        true
    }

    pub(crate) fn approve(&mut self, user_code: &str) -> bool {
        self.decide(user_code, CodeStatus::Approved)
    }

    pub(crate) fn deny(&mut self, user_code: &str) -> bool {
        self.decide(user_code, CodeStatus::Denied)
    }

    /// Pending, unexpired user codes of one region or of both, oldest deadline first.
    pub(crate) fn pending_codes(&self, region: Option<Region>) -> Vec<String> {
        let now = self.now_ms();
        let mut codes: Vec<(i64, String)> = Region::ALL
            .into_iter()
            .filter(|r| region.is_none_or(|only| only == *r))
            .flat_map(|r| self.region(r).codes.iter())
            .filter(|(_, c)| c.status == CodeStatus::Pending && c.expires_at_ms > now)
            .map(|(k, c)| (c.expires_at_ms, k.clone()))
            .collect();
        codes.sort();
        codes.into_iter().map(|(_, k)| k).collect()
    }

    pub(crate) fn inject(&mut self, suffix: &str, fault: Fault, count: u32) {
        if count > 0 {
            self.faults.push(FaultRule {
                suffix: suffix.to_string(),
                fault,
                remaining: count,
            });
        }
    }

    /// Consumes one fault matching `path`, if any is queued.
    pub(crate) fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|rule| path.ends_with(&rule.suffix))?;
        let rule = &mut self.faults[i];
        let fault = rule.fault;
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    pub(crate) fn expire_all_access_tokens(&mut self) -> usize {
        let mut n = 0;
        for rs in &mut self.regions {
            for grant in rs.access.values_mut() {
                grant.expires_at_ms = i64::MIN;
                n += 1;
            }
        }
        n
    }

    fn new_access(&mut self, region: Region, family: u64, ttl_ms: i64, now: i64) -> (String, i64) {
        let token = self.token("mm-at-");
        let expires_at_ms = now.saturating_add(ttl_ms);
        self.region_mut(region).access.insert(
            token.clone(),
            AccessGrant {
                family,
                expires_at_ms,
            },
        );
        (token, expires_at_ms)
    }

    fn new_refresh(&mut self, region: Region, family: u64) -> String {
        let token = self.token("mm-rt-");
        self.region_mut(region).refresh.insert(
            token.clone(),
            RefreshGrant {
                family,
                used: false,
            },
        );
        token
    }

    /// Starts a new token family (one login) and returns its first pair and access deadline.
    ///
    /// `now` is the caller's clock reading, so a TTL it encodes from the same reading is exact.
    pub(crate) fn mint_family(
        &mut self,
        region: Region,
        access_ttl_ms: i64,
        now: i64,
    ) -> (String, String, i64) {
        self.next_family += 1;
        let family = self.next_family;
        let (access, expires_at_ms) = self.new_access(region, family, access_ttl_ms, now);
        let refresh = self.new_refresh(region, family);
        (access, refresh, expires_at_ms)
    }

    pub(crate) fn mint_pair(&mut self, region: Region, access_ttl_ms: i64) -> (String, String) {
        let (access, refresh, _) = self.mint_family(region, access_ttl_ms, self.now_ms());
        (access, refresh)
    }

    pub(crate) fn access_valid(&self, region: Region, token: &str) -> bool {
        let rs = self.region(region);
        rs.access
            .get(token)
            .is_some_and(|g| g.expires_at_ms > self.now_ms() && !rs.family_revoked(g.family))
    }

    /// Presents a refresh token: rotation with reuse detection.
    pub(crate) fn refresh(&mut self, region: Region, presented: &str, now: i64) -> RefreshOutcome {
        let omit = self.config.omit_refresh_token_on_refresh;
        let ttl = self.config.access_ttl_ms;
        let rs = self.region_mut(region);
        let Some(grant) = rs.refresh.get(presented).cloned() else {
            return RefreshOutcome::InvalidGrant;
        };
        if grant.used {
            // A used token in a second hand means the family leaked or two clients raced:
            // revoke it whole, as real reuse detection does.
            rs.revoked_families.insert(grant.family);
            return RefreshOutcome::Reused;
        }
        if rs.family_revoked(grant.family) {
            return RefreshOutcome::InvalidGrant;
        }
        let refresh = if omit {
            None
        } else {
            if let Some(g) = rs.refresh.get_mut(presented) {
                g.used = true;
            }
            Some(self.new_refresh(region, grant.family))
        };
        let (access, access_expires_at_ms) = self.new_access(region, grant.family, ttl, now);
        RefreshOutcome::Rotated {
            access,
            refresh,
            access_expires_at_ms,
        }
    }
}

/// The state and the port, shared by the server thread and the [`super::Emulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) port: u16,
    /// Requests being handled right now (control requests excluded).
    pub(crate) in_flight: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn new(mut config: EmulatorConfig, port: u16) -> Shared {
        config.port = port;
        Shared {
            in_flight: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                config,
                regions: Default::default(),
                faults: Vec::new(),
                api_keys: HashSet::new(),
                rng: Rng::seeded(),
                messages: VecDeque::new(),
                next_family: 0,
                last_rotation: None,
            }),
            port,
        }
    }

    /// Locks the state; a panic while it was held does not make the emulator unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
