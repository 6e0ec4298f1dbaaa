//! Derived dimensions with bounded cardinality: the world region of a
//! CloudFront edge location, and route templates that turn the ids in paths
//! into placeholders.
//!
//! Both exist so per-region and per-route figures (SLIs, "top failing
//! routes") can be labels without letting traffic decide how many labels
//! there are.

use std::collections::HashMap;

/// A coarse world region, from the airport code an edge location is named
/// after (`FRA56-P2` → Frankfurt → Europe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    NorthAmerica,
    SouthAmerica,
    Europe,
    MiddleEast,
    Africa,
    AsiaPacific,
    China,
    Oceania,
    Other,
}

impl Region {
    pub const ALL: [Region; 9] = [
        Region::NorthAmerica,
        Region::SouthAmerica,
        Region::Europe,
        Region::MiddleEast,
        Region::Africa,
        Region::AsiaPacific,
        Region::China,
        Region::Oceania,
        Region::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Region::NorthAmerica => "north-america",
            Region::SouthAmerica => "south-america",
            Region::Europe => "europe",
            Region::MiddleEast => "middle-east",
            Region::Africa => "africa",
            Region::AsiaPacific => "asia-pacific",
            Region::China => "china",
            Region::Oceania => "oceania",
            Region::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Airport codes of CloudFront edge locations and regional edge caches, by
/// region. Documented in docs/dimensions.md; a code not listed is `other`.
const AIRPORTS: &[(Region, &[&str])] = &[
    (
        Region::NorthAmerica,
        &[
            "ATL", "BNA", "BOS", "CMH", "DEN", "DFW", "DTW", "EWR", "HIO", "IAD", "IAH", "IND", "JAX", "JFK", "LAS",
            "LAX", "MCI", "MIA", "MSP", "ORD", "PDX", "PHL", "PHX", "PIT", "SEA", "SFO", "SLC", "SJC", "TPA", "YUL",
            "YTO", "YYZ", "YVR", "YYC", "MEX", "QRO", "GDL", "ANC", "HNL", "CLT", "RDU", "AUS", "SAN", "OAK", "BUR",
            "MCO", "STL", "MKE", "OMA", "BWI", "DCA",
        ],
    ),
    (Region::SouthAmerica, &["GRU", "GIG", "FOR", "POA", "EZE", "SCL", "BOG", "LIM", "UIO", "CCS", "MVD", "ASU"]),
    (
        Region::Europe,
        &[
            "LHR", "LON", "MAN", "EDI", "DUB", "AMS", "BRU", "FRA", "MUC", "DUS", "HAM", "TXL", "BER", "STR", "LEJ",
            "CDG", "PAR", "MRS", "LYS", "NCE", "MAD", "BCN", "LIS", "MXP", "MIL", "FCO", "PMO", "ZRH", "GVA", "VIE",
            "PRG", "WAW", "BUD", "OSL", "ARN", "GOT", "CPH", "HEL", "ATH", "SOF", "OTP", "ZAG", "BEG", "TLL", "RIX",
            "VNO", "KBP", "IST", "LUX",
        ],
    ),
    (Region::MiddleEast, &["DXB", "FJR", "AUH", "BAH", "DOH", "JED", "RUH", "DMM", "KWI", "MCT", "TLV", "AMM"]),
    (Region::Africa, &["JNB", "CPT", "NBO", "LOS", "CAI", "CMN", "ACC", "DAR", "ADD", "KGL", "TUN"]),
    (
        Region::AsiaPacific,
        &[
            "NRT", "HND", "TYO", "KIX", "ITM", "FUK", "ICN", "GMP", "SEL", "HKG", "TPE", "SIN", "KUL", "CGK", "BKK",
            "MNL", "HAN", "SGN", "BOM", "DEL", "MAA", "BLR", "HYD", "CCU", "PNQ", "AMD", "CMB", "DAC", "KTM", "KHI",
            "LHE", "ISB",
        ],
    ),
    (Region::China, &["PEK", "PVG", "SHA", "SZX", "CAN", "CTU", "HGH", "ZHY", "NKG", "WUH", "XIY", "CKG"]),
    (Region::Oceania, &["SYD", "MEL", "PER", "BNE", "ADL", "CBR", "AKL", "WLG", "CHC"]),
];

/// The world region of an AWS region code (`eu-west-1`, `ap-southeast-2`),
/// the place a synthetic event was measured from; `None` for anything else.
pub fn aws_region(code: &str) -> Option<Region> {
    let (prefix, rest) = code.split_once('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return None;
    }
    Some(match prefix {
        "us" | "ca" | "mx" => Region::NorthAmerica,
        "sa" => Region::SouthAmerica,
        "eu" => Region::Europe,
        "me" | "il" => Region::MiddleEast,
        "af" => Region::Africa,
        "cn" => Region::China,
        // Sydney, Melbourne, Auckland.
        "ap" if matches!(rest, "southeast-2" | "southeast-4" | "southeast-6") => Region::Oceania,
        "ap" => Region::AsiaPacific,
        _ => return None,
    })
}

/// The region of an edge location such as `IAD89-C1`, `FRA56-P2` or
/// `NRT57`, or of an AWS region code such as `eu-west-1` (where a
/// synthetic event was measured from).
pub fn edge_region(edge_location: &str) -> Region {
    if let Some(r) = aws_region(edge_location) {
        return r;
    }
    let code = edge_location.as_bytes();
    if code.len() < 3 || !code[..3].iter().all(u8::is_ascii_alphabetic) {
        return Region::Other;
    }
    let upper = [code[0].to_ascii_uppercase(), code[1].to_ascii_uppercase(), code[2].to_ascii_uppercase()];
    for (region, codes) in AIRPORTS {
        if codes.iter().any(|c| c.as_bytes() == upper) {
            return *region;
        }
    }
    Region::Other
}

/// Turns concrete paths into route templates: `/products/12345` →
/// `/products/{id}`. Patterns are tried per path segment, in order; the
/// first that matches replaces the segment with its placeholder.
///
/// At most `max_routes` distinct templates are kept; after that, a path
/// whose template is new becomes the route `other`, so a scan of random URLs
/// cannot grow the label set.
#[derive(Debug, Clone)]
pub struct RouteTemplater {
    patterns: Vec<SegmentPattern>,
    max_routes: usize,
    known: HashMap<String, ()>,
}

/// The route every path beyond the cap is folded into.
pub const OTHER_ROUTE: &str = "other";

/// What a path segment must look like to be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentPattern {
    /// All ASCII digits: `12345` → `{id}`.
    Number,
    /// A UUID, any case: `{uuid}`.
    Uuid,
    /// At least `min_len` hex digits with at least one digit: `{hex}`.
    Hex { min_len: usize },
    /// At least `min_len` characters of letters, digits, `-` and `_`, with
    /// both letters and digits (opaque tokens, base64url ids): `{token}`.
    Token { min_len: usize },
    /// Segments that start with a literal prefix, e.g. `order-` → `order-{id}`
    /// when the rest is a number (a configurable pattern).
    PrefixedNumber { prefix: String },
}

impl SegmentPattern {
    fn placeholder(&self, segment: &str) -> Option<String> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match self {
            SegmentPattern::Number => digits(segment).then(|| "{id}".to_string()),
            SegmentPattern::Uuid => is_uuid(segment).then(|| "{uuid}".to_string()),
            SegmentPattern::Hex { min_len } => (segment.len() >= *min_len
                && segment.bytes().all(|b| b.is_ascii_hexdigit())
                && segment.bytes().any(|b| b.is_ascii_digit()))
            .then(|| "{hex}".to_string()),
            SegmentPattern::Token { min_len } => (segment.len() >= *min_len
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && segment.bytes().any(|b| b.is_ascii_digit())
                && segment.bytes().any(|b| b.is_ascii_alphabetic()))
            .then(|| "{token}".to_string()),
            SegmentPattern::PrefixedNumber { prefix } => {
                segment.strip_prefix(prefix.as_str()).filter(|rest| digits(rest)).map(|_| format!("{prefix}{{id}}"))
            }
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, &c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

impl Default for RouteTemplater {
    fn default() -> Self {
        RouteTemplater::new(RouteTemplater::default_patterns(), 1000)
    }
}

impl RouteTemplater {
    pub fn default_patterns() -> Vec<SegmentPattern> {
        vec![
            SegmentPattern::Number,
            SegmentPattern::Uuid,
            SegmentPattern::Hex { min_len: 16 },
            SegmentPattern::Token { min_len: 20 },
        ]
    }

    pub fn new(patterns: Vec<SegmentPattern>, max_routes: usize) -> RouteTemplater {
        RouteTemplater { patterns, max_routes: max_routes.max(1), known: HashMap::new() }
    }

    /// The template of a path (query strings are the caller's to strip).
    pub fn template(&self, path: &str) -> String {
        let mut out = String::with_capacity(path.len());
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            match self.patterns.iter().find_map(|p| p.placeholder(seg)) {
                Some(ph) => out.push_str(&ph),
                None => out.push_str(seg),
            }
        }
        out
    }

    /// The bounded route of a path: its template while fewer than
    /// `max_routes` templates were seen (or this one was), else `other`.
    pub fn route(&mut self, path: &str) -> String {
        let t = self.template(path);
        if self.known.contains_key(&t) {
            return t;
        }
        if self.known.len() >= self.max_routes {
            return OTHER_ROUTE.to_string();
        }
        self.known.insert(t.clone(), ());
        t
    }

    /// How many distinct templates are held (never more than `max_routes`).
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_locations_map_to_regions() {
        for (edge, want) in [
            ("IAD89-C1", Region::NorthAmerica),
            ("FRA56-P2", Region::Europe),
            ("lhr61-c2", Region::Europe),
            ("NRT57-C3", Region::AsiaPacific),
            ("GRU1-C1", Region::SouthAmerica),
            ("SYD1-C2", Region::Oceania),
            ("DXB50-C1", Region::MiddleEast),
            ("JNB50-C1", Region::Africa),
            ("PVG52-E1", Region::China),
            ("QQQ1", Region::Other),
            ("", Region::Other),
            ("12", Region::Other),
            ("9AB", Region::Other),
            // AWS regions: where an agent's probes ran from.
            ("eu-west-1", Region::Europe),
            ("us-gov-west-1", Region::NorthAmerica),
            ("ap-southeast-2", Region::Oceania),
            ("ap-northeast-1", Region::AsiaPacific),
            ("me-central-1", Region::MiddleEast),
            ("sa-east-1", Region::SouthAmerica),
            ("cn-north-1", Region::China),
            ("xx-west-1", Region::Other),
            ("eu-", Region::Other),
        ] {
            assert_eq!(edge_region(edge), want, "{edge}");
        }
        // No code is listed in two regions.
        let mut seen = std::collections::HashSet::new();
        for (_, codes) in AIRPORTS {
            for c in *codes {
                assert!(seen.insert(*c), "{c} listed twice");
                assert!(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()), "{c}");
            }
        }
        assert!(Region::ALL.iter().all(|r| Region::parse(r.as_str()) == Some(*r)));
    }

    #[test]
    fn templates_replace_ids_and_keep_words() {
        let t = RouteTemplater::default();
        for (path, want) in [
            ("/products/12345", "/products/{id}"),
            ("/api/cart/7/items/99", "/api/cart/{id}/items/{id}"),
            ("/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/orders/{uuid}"),
            ("/blobs/deadbeefcafebabe0123", "/blobs/{hex}"),
            ("/s/AbC123xyz_-987654321qq", "/s/{token}"),
            ("/checkout", "/checkout"),
            ("/category/shoes", "/category/shoes"),
            ("/static/app.js", "/static/app.js"),
            ("/", "/"),
            ("", ""),
            ("/v2/users", "/v2/users"),
        ] {
            assert_eq!(t.template(path), want, "{path}");
        }
        let custom = RouteTemplater::new(vec![SegmentPattern::PrefixedNumber { prefix: "order-".into() }], 10);
        assert_eq!(custom.template("/o/order-991/x"), "/o/order-{id}/x");
        assert_eq!(custom.template("/o/order-x"), "/o/order-x");
    }

    #[test]
    fn the_route_set_is_capped_with_an_other_bucket() {
        let mut t = RouteTemplater::new(RouteTemplater::default_patterns(), 3);
        assert_eq!(t.route("/a/1"), "/a/{id}");
        assert_eq!(t.route("/b"), "/b");
        assert_eq!(t.route("/c"), "/c");
        assert_eq!(t.route("/d"), OTHER_ROUTE);
        assert_eq!(t.route("/a/2"), "/a/{id}", "known templates stay");
        for i in 0..10_000 {
            t.route(&format!("/random-{i}-x"));
        }
        assert_eq!(t.len(), 3);
    }
}
