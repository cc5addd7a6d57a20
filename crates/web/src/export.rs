//! Botnests for other tools: GraphML and GEXF (Gephi), a Cypher script and CSV tables for
//! `neo4j-admin database import` (Neo4j), a STIX 2.1 bundle (threat-intelligence platforms) and
//! JSON. Nodes are hosts with their role, tenant and score; edges are channels with port,
//! protocol, flows, bytes and times. Every string is escaped for its format: tenant names come
//! from the configuration and evidence from the network, and neither may break a file.

use crate::json::rfc3339;
use crate::view::{BotnestEntry, ChannelEntry, HostName, View};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// GraphML (Gephi, yEd, NetworkX).
    GraphMl,
    /// GEXF 1.3 (Gephi).
    Gexf,
    /// A Cypher script of MERGE statements (Neo4j).
    Cypher,
    /// The node table for `neo4j-admin database import`.
    CsvNodes,
    /// The relationship table for `neo4j-admin database import`.
    CsvEdges,
    /// A STIX 2.1 bundle.
    Stix,
    /// Botnests, hosts and channels in the API's JSON shapes.
    Json,
}

impl Format {
    /// The format named in a URL or on the command line (`csv` needs a table, see [`Format`]).
    pub fn parse(name: &str, table: Option<&str>) -> Result<Format, String> {
        Ok(match (name, table) {
            ("graphml", None) => Format::GraphMl,
            ("gexf", None) => Format::Gexf,
            ("cypher", None) => Format::Cypher,
            ("csv", Some("nodes")) => Format::CsvNodes,
            ("csv", Some("edges")) => Format::CsvEdges,
            ("csv", Some(t)) => return Err(format!("unknown table {t:?} (nodes or edges)")),
            ("stix", None) => Format::Stix,
            ("json", None) => Format::Json,
            (_, Some(_)) => return Err("only csv has tables".to_owned()),
            (f, None) => {
                return Err(format!(
                    "unknown export format {f:?} (graphml, gexf, cypher, csv, stix, json)"
                ))
            }
        })
    }

    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::GraphMl => "application/graphml+xml; charset=utf-8",
            Format::Gexf => "application/gexf+xml; charset=utf-8",
            Format::Cypher => "text/plain; charset=utf-8",
            Format::CsvNodes | Format::CsvEdges => "text/csv; charset=utf-8",
            Format::Stix => "application/stix+json;version=2.1",
            Format::Json => "application/json",
        }
    }

    /// The usual file name ending.
    pub fn extension(self) -> &'static str {
        match self {
            Format::GraphMl => "graphml",
            Format::Gexf => "gexf",
            Format::Cypher => "cypher",
            Format::CsvNodes => "nodes.csv",
            Format::CsvEdges => "edges.csv",
            Format::Stix => "stix.json",
            Format::Json => "json",
        }
    }
}

/// A host of an exported graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `tenant/address`: unique, and split at the last `/` it gives both back.
    pub key: String,
    /// Tenant name.
    pub tenant: String,
    /// Address.
    pub address: IpAddr,
    /// Its most telling role, or `host` for a host with none.
    pub role: String,
    /// Every role.
    pub roles: Vec<String>,
    /// Its score (0 without a verdict).
    pub score: f64,
    /// Its botnest.
    pub botnest: Option<u64>,
    /// Whether it is reported.
    pub accused: bool,
}

/// The part of a view being exported: botnests, their hosts and their channels.
#[derive(Debug)]
pub struct Selection<'a> {
    /// The botnests.
    pub botnests: Vec<&'a BotnestEntry>,
    /// Hosts, by key.
    pub nodes: BTreeMap<HostName, Node>,
    /// Channels between them.
    pub edges: Vec<&'a ChannelEntry>,
    view: &'a View,
}

fn key(h: &HostName) -> String {
    format!("{}/{}", h.0, h.1)
}

impl<'a> Selection<'a> {
    /// One botnest, or with `None` every botnest and accused host. `None` when the botnest is
    /// unknown.
    pub fn of(view: &'a View, botnest: Option<u64>) -> Option<Selection<'a>> {
        let botnests: Vec<&BotnestEntry> = match botnest {
            Some(id) => vec![view.botnests.get(&id)?],
            None => view.botnests.values().collect(),
        };
        let mut s = Selection {
            botnests,
            nodes: BTreeMap::new(),
            edges: Vec::new(),
            view,
        };
        let mut hosts: BTreeSet<HostName> = BTreeSet::new();
        for b in &s.botnests {
            hosts.extend(b.members.iter().map(|(h, _)| h.clone()));
        }
        if botnest.is_none() {
            hosts.extend(view.accused().map(|h| h.name.clone()));
        }
        let mut seen = BTreeSet::new();
        for h in &hosts {
            for &i in view.channels_by_host.get(h).into_iter().flatten() {
                if seen.insert(i) {
                    s.edges.push(&view.channels[i]);
                }
            }
        }
        let ends: Vec<HostName> = s
            .edges
            .iter()
            .flat_map(|c| [c.client.clone(), c.server.clone()])
            .collect();
        hosts.extend(ends);
        for h in hosts {
            let node = s.node(&h);
            s.nodes.insert(h, node);
        }
        Some(s)
    }

    fn node(&self, h: &HostName) -> Node {
        let member_roles: Option<&Vec<&str>> = self
            .botnests
            .iter()
            .flat_map(|b| b.members.iter())
            .find(|(m, _)| m == h)
            .map(|(_, r)| r);
        let verdict = self.view.verdicts.get(h);
        let roles: Vec<String> = match (member_roles, verdict) {
            (Some(r), _) if !r.is_empty() => r.iter().map(|s| (*s).to_owned()).collect(),
            (_, Some(v)) => v.roles.iter().map(|s| (*s).to_owned()).collect(),
            _ => Vec::new(),
        };
        Node {
            key: key(h),
            tenant: h.0.clone(),
            address: h.1,
            role: roles.first().cloned().unwrap_or_else(|| "host".to_owned()),
            roles,
            score: verdict.map_or(0.0, |v| crate::json::round3(v.score)),
            botnest: verdict.and_then(|v| v.botnest).or_else(|| {
                self.botnests
                    .iter()
                    .find(|b| b.members.iter().any(|(m, _)| m == h))
                    .map(|b| b.id)
            }),
            accused: verdict.is_some_and(|v| v.accused),
        }
    }

    /// The selection in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::GraphMl => self.graphml(),
            Format::Gexf => self.gexf(),
            Format::Cypher => self.cypher(),
            Format::CsvNodes => self.csv_nodes(),
            Format::CsvEdges => self.csv_edges(),
            Format::Stix => serde_json::to_string_pretty(&self.stix()).unwrap_or_default() + "\n",
            Format::Json => serde_json::to_string_pretty(&self.json()).unwrap_or_default() + "\n",
        }
    }
}

/// Edge attributes: name, GraphML type, and the value of a channel.
type EdgeAttr = (&'static str, &'static str, fn(&ChannelEntry) -> String);

const EDGE_ATTRS: [EdgeAttr; 9] = [
    ("port", "int", |c| c.port.to_string()),
    ("proto", "int", |c| c.proto.to_string()),
    ("flows", "long", |c| c.flows.to_string()),
    ("failed", "long", |c| {
        c.json["failed"].as_u64().unwrap_or(0).to_string()
    }),
    ("bytes_out", "long", |c| c.bytes_out.to_string()),
    ("bytes_in", "long", |c| c.bytes_in.to_string()),
    ("first_seen", "string", |c| rfc3339(c.first_seen)),
    ("last_seen", "string", |c| rfc3339(c.last_seen)),
    ("tcp_flags", "string", |c| {
        c.json["tcp_flags"].as_str().unwrap_or("").to_owned()
    }),
];

/// Node attributes: name, GraphML type, and the value of a node.
type NodeAttr = (&'static str, &'static str, fn(&Node) -> String);

const NODE_ATTRS: [NodeAttr; 7] = [
    ("address", "string", |n| n.address.to_string()),
    ("tenant", "string", |n| n.tenant.clone()),
    ("role", "string", |n| n.role.clone()),
    ("roles", "string", |n| n.roles.join(",")),
    ("score", "double", |n| n.score.to_string()),
    ("botnest", "string", |n| {
        n.botnest.map(|b| b.to_string()).unwrap_or_default()
    }),
    ("accused", "boolean", |n| n.accused.to_string()),
];

/// A colour per role for Gephi, so a loaded botnest reads at a glance.
fn role_colour(role: &str) -> (u8, u8, u8) {
    match role {
        "bot" => (214, 39, 40),
        "c2" => (148, 0, 90),
        "scanner" | "bruteforcer" | "spammer" | "flooder" => (255, 127, 14),
        "peer" => (31, 119, 180),
        "victim" => (127, 127, 127),
        _ => (199, 199, 199),
    }
}

/// Escapes text for XML content and attribute values. Characters XML 1.0 cannot carry at all
/// (most control characters) become U+FFFD; line breaks and tabs are written as references so
/// attribute values keep them.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a single-quoted Cypher string literal.
pub fn cypher_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

impl Selection<'_> {
    fn graphml(&self) -> String {
        let mut o = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (name, ty, _) in NODE_ATTRS {
            let _ = writeln!(
                o,
                "  <key id=\"n_{name}\" for=\"node\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
            );
        }
        for (name, ty, _) in EDGE_ATTRS {
            let _ = writeln!(
                o,
                "  <key id=\"e_{name}\" for=\"edge\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
            );
        }
        o.push_str("  <graph id=\"botnest\" edgedefault=\"directed\">\n");
        for n in self.nodes.values() {
            let _ = writeln!(o, "    <node id=\"{}\">", xml_escape(&n.key));
            for (name, _, value) in NODE_ATTRS {
                let _ = writeln!(
                    o,
                    "      <data key=\"n_{name}\">{}</data>",
                    xml_escape(&value(n))
                );
            }
            o.push_str("    </node>\n");
        }
        for (i, c) in self.edges.iter().enumerate() {
            let _ = writeln!(
                o,
                "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\">",
                xml_escape(&key(&c.client)),
                xml_escape(&key(&c.server))
            );
            for (name, _, value) in EDGE_ATTRS {
                let _ = writeln!(
                    o,
                    "      <data key=\"e_{name}\">{}</data>",
                    xml_escape(&value(c))
                );
            }
            o.push_str("    </edge>\n");
        }
        o.push_str("  </graph>\n</graphml>\n");
        o
    }

    fn gexf(&self) -> String {
        fn gexf_type(t: &'static str) -> &'static str {
            match t {
                "int" => "integer",
                other => other,
            }
        }
        let mut o = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <gexf xmlns=\"http://gexf.net/1.3\" xmlns:viz=\"http://gexf.net/1.3/viz\" \
             version=\"1.3\">\n  \
             <meta><creator>botnest</creator><description>botnests: hosts and channels\
             </description></meta>\n  \
             <graph defaultedgetype=\"directed\" mode=\"static\">\n    \
             <attributes class=\"node\">\n",
        );
        for (i, (name, ty, _)) in NODE_ATTRS.iter().enumerate() {
            let _ = writeln!(
                o,
                "      <attribute id=\"{i}\" title=\"{name}\" type=\"{}\"/>",
                gexf_type(ty)
            );
        }
        o.push_str("    </attributes>\n    <attributes class=\"edge\">\n");
        for (i, (name, ty, _)) in EDGE_ATTRS.iter().enumerate() {
            let _ = writeln!(
                o,
                "      <attribute id=\"{i}\" title=\"{name}\" type=\"{}\"/>",
                gexf_type(ty)
            );
        }
        o.push_str("    </attributes>\n    <nodes>\n");
        for n in self.nodes.values() {
            let _ = writeln!(
                o,
                "      <node id=\"{}\" label=\"{}\">\n        <attvalues>",
                xml_escape(&n.key),
                xml_escape(&n.address.to_string())
            );
            for (i, (_, _, value)) in NODE_ATTRS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "          <attvalue for=\"{i}\" value=\"{}\"/>",
                    xml_escape(&value(n))
                );
            }
            let (r, g, b) = role_colour(&n.role);
            let _ = write!(
                o,
                "        </attvalues>\n        <viz:color r=\"{r}\" g=\"{g}\" b=\"{b}\"/>\n        \
                 <viz:size value=\"{}\"/>\n      </node>\n",
                4.0 + 16.0 * n.score.clamp(0.0, 1.0)
            );
        }
        o.push_str("    </nodes>\n    <edges>\n");
        for (i, c) in self.edges.iter().enumerate() {
            let _ = writeln!(
                o,
                "      <edge id=\"{i}\" source=\"{}\" target=\"{}\" weight=\"{}\" \
                 label=\"{}/{}\">\n        <attvalues>",
                xml_escape(&key(&c.client)),
                xml_escape(&key(&c.server)),
                c.flows.max(1),
                c.port,
                c.proto
            );
            for (j, (_, _, value)) in EDGE_ATTRS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "          <attvalue for=\"{j}\" value=\"{}\"/>",
                    xml_escape(&value(c))
                );
            }
            o.push_str("        </attvalues>\n      </edge>\n");
        }
        o.push_str("    </edges>\n  </graph>\n</gexf>\n");
        o
    }

    fn cypher(&self) -> String {
        let q = |s: &str| format!("'{}'", cypher_escape(s));
        let mut o = String::from(
            "// botnest export: hosts, channels and botnests. Run with cypher-shell -f FILE.\n\
             CREATE CONSTRAINT botnest_host_key IF NOT EXISTS FOR (h:Host) REQUIRE h.key IS UNIQUE;\n\
             CREATE CONSTRAINT botnest_botnest_id IF NOT EXISTS FOR (b:Botnest) REQUIRE b.id IS UNIQUE;\n",
        );
        for n in self.nodes.values() {
            let roles: Vec<String> = n.roles.iter().map(|r| q(r)).collect();
            let _ = writeln!(
                o,
                "MERGE (h:Host {{key: {}}}) SET h.address = {}, h.tenant = {}, h.role = {}, \
                 h.roles = [{}], h.score = {}, h.accused = {};",
                q(&n.key),
                q(&n.address.to_string()),
                q(&n.tenant),
                q(&n.role),
                roles.join(", "),
                n.score,
                n.accused
            );
        }
        for b in &self.botnests {
            let tenants: Vec<String> = b.tenants.iter().map(|t| q(t)).collect();
            let c2: Vec<String> = b.json["c2"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(q)
                .collect();
            let _ = writeln!(
                o,
                "MERGE (b:Botnest {{id: {}}}) SET b.state = {}, b.score = {}, b.tenants = [{}], \
                 b.c2 = [{}], b.first_seen = datetime({}), b.last_seen = datetime({});",
                b.id,
                q(b.json["state"].as_str().unwrap_or("")),
                crate::json::round3(b.score),
                tenants.join(", "),
                c2.join(", "),
                q(&rfc3339(b.first_seen)),
                q(&rfc3339(b.last_seen))
            );
            for (m, roles) in &b.members {
                let role = roles.first().copied().unwrap_or("member");
                let _ = writeln!(
                    o,
                    "MATCH (h:Host {{key: {}}}), (b:Botnest {{id: {}}}) \
                     MERGE (h)-[r:MEMBER_OF]->(b) SET r.role = {};",
                    q(&key(m)),
                    b.id,
                    q(role)
                );
            }
        }
        for c in &self.edges {
            let _ = writeln!(
                o,
                "MATCH (a:Host {{key: {}}}), (b:Host {{key: {}}}) \
                 MERGE (a)-[c:CHANNEL {{port: {}, proto: {}}}]->(b) SET c.flows = {}, \
                 c.failed = {}, c.bytes_out = {}, c.bytes_in = {}, c.first_seen = datetime({}), \
                 c.last_seen = datetime({});",
                q(&key(&c.client)),
                q(&key(&c.server)),
                c.port,
                c.proto,
                c.flows,
                c.json["failed"].as_u64().unwrap_or(0),
                c.bytes_out,
                c.bytes_in,
                q(&rfc3339(c.first_seen)),
                q(&rfc3339(c.last_seen))
            );
        }
        o
    }

    fn csv_nodes(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "key:ID",
            "address",
            "tenant",
            "role",
            "roles:string[]",
            "score:float",
            "botnest:long",
            "accused:boolean",
            ":LABEL",
        ]);
        for n in self.nodes.values() {
            let _ = w.write_record([
                n.key.clone(),
                n.address.to_string(),
                n.tenant.clone(),
                n.role.clone(),
                n.roles.join(";"),
                n.score.to_string(),
                n.botnest.map(|b| b.to_string()).unwrap_or_default(),
                n.accused.to_string(),
                "Host".to_owned(),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    fn csv_edges(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            ":START_ID",
            ":END_ID",
            ":TYPE",
            "port:int",
            "proto:int",
            "flows:long",
            "failed:long",
            "bytes_out:long",
            "bytes_in:long",
            "first_seen:datetime",
            "last_seen:datetime",
        ]);
        for c in &self.edges {
            let _ = w.write_record([
                key(&c.client),
                key(&c.server),
                "CHANNEL".to_owned(),
                c.port.to_string(),
                c.proto.to_string(),
                c.flows.to_string(),
                c.json["failed"].as_u64().unwrap_or(0).to_string(),
                c.bytes_out.to_string(),
                c.bytes_in.to_string(),
                rfc3339(c.first_seen),
                rfc3339(c.last_seen),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        let hosts: Vec<&Value> = self
            .nodes
            .keys()
            .filter_map(|h| self.view.verdicts.get(h))
            .map(|h| &h.json)
            .collect();
        json!({
            "botnests": self.botnests.iter().map(|b| &b.json).collect::<Vec<_>>(),
            "hosts": hosts,
            "channels": self.edges.iter().map(|c| &c.json).collect::<Vec<_>>(),
        })
    }
}

/// STIX 2.1: deterministic identifiers, canonical JSON and the bundle.
mod stix {
    use super::*;
    use uuid::Uuid;

    /// The namespace STIX 2.1 (section 2.9) gives for identifiers of cyber-observable objects.
    const SCO_NAMESPACE: Uuid = uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7");
    /// botnest's own namespace for the identifiers of the domain objects it writes.
    const BOTNEST_NAMESPACE: Uuid = uuid::uuid!("5f0b3d43-8f5c-4d0e-9b8a-6a3c2f1e7d19");
    /// When botnest's identity object counts as created: fixed, so the object never changes.
    pub(super) const IDENTITY_TIME: &str = "2024-01-01T00:00:00.000Z";

    /// JSON with object keys sorted at every level and no spaces (RFC 8785 for the strings and
    /// integers used here).
    pub(super) fn canonical(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                let parts: Vec<String> = sorted
                    .iter()
                    .map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Value::Array(a) => {
                let parts: Vec<String> = a.iter().map(canonical).collect();
                format!("[{}]", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    /// The identifier of a cyber-observable object from its identifying properties.
    pub(super) fn sco_id(kind: &str, contributing: &Value) -> String {
        let u = Uuid::new_v5(&SCO_NAMESPACE, canonical(contributing).as_bytes());
        format!("{kind}--{u}")
    }

    /// The identifier of a domain object from what makes it that object.
    pub(super) fn sdo_id(kind: &str, content: &str) -> String {
        let u = Uuid::new_v5(&BOTNEST_NAMESPACE, format!("{kind}|{content}").as_bytes());
        format!("{kind}--{u}")
    }

    /// An `ipv4-addr` or `ipv6-addr` object.
    pub(super) fn address(a: IpAddr) -> Value {
        let kind = if a.is_ipv4() {
            "ipv4-addr"
        } else {
            "ipv6-addr"
        };
        let contributing = json!({"value": a.to_string()});
        json!({
            "type": kind,
            "spec_version": "2.1",
            "id": sco_id(kind, &contributing),
            "value": a.to_string(),
        })
    }

    /// Splits `address:port` (brackets around IPv6).
    pub(super) fn endpoint(s: &str) -> Option<(IpAddr, Option<u16>)> {
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Some((sa.ip(), Some(sa.port())));
        }
        s.parse().ok().map(|a| (a, None))
    }

    /// A STIX pattern matching traffic to an endpoint.
    pub(super) fn pattern(a: IpAddr, port: Option<u16>) -> String {
        let kind = if a.is_ipv4() {
            "ipv4-addr"
        } else {
            "ipv6-addr"
        };
        // Addresses and ports are formatted by botnest, never taken from input as text, so
        // they carry no quote; the escape keeps the pattern valid whatever they hold.
        let value = a.to_string().replace('\\', "\\\\").replace('\'', "\\'");
        match port {
            Some(p) => format!(
                "[network-traffic:dst_ref.type = '{kind}' AND \
                 network-traffic:dst_ref.value = '{value}' AND network-traffic:dst_port = {p}]"
            ),
            None => format!("[{kind}:value = '{value}']"),
        }
    }

    pub(super) fn protocol_name(p: u8) -> Option<&'static str> {
        match p {
            1 => Some("icmp"),
            6 => Some("tcp"),
            17 => Some("udp"),
            58 => Some("ipv6-icmp"),
            132 => Some("sctp"),
            _ => None,
        }
    }
}

impl Selection<'_> {
    /// The STIX 2.1 bundle: botnest's identity; per botnest an `infrastructure` of type botnet
    /// that consists of its members' addresses; per C2 endpoint an `infrastructure` of type
    /// command-and-control, an `indicator` with a pattern for traffic to it and the
    /// relationships between them; the channels as `network-traffic` in `observed-data`.
    pub fn stix(&self) -> Value {
        let mut objects: BTreeMap<String, Value> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut add = |objects: &mut BTreeMap<String, Value>, v: Value| -> String {
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            if !objects.contains_key(&id) {
                order.push(id.clone());
                objects.insert(id.clone(), v);
            }
            id
        };
        let identity = stix::sdo_id("identity", "botnest");
        add(
            &mut objects,
            json!({
                "type": "identity", "spec_version": "2.1", "id": identity,
                "created": stix::IDENTITY_TIME, "modified": stix::IDENTITY_TIME,
                "name": "botnest", "identity_class": "system",
                "description": "Botnet detection from IPFIX and NetFlow",
            }),
        );
        for b in &self.botnests {
            let created = rfc3339(b.first_seen);
            let modified = rfc3339(b.last_seen.max(b.first_seen));
            let common = |kind: &str, id: String| {
                let mut m = Map::new();
                m.insert("type".into(), json!(kind));
                m.insert("spec_version".into(), json!("2.1"));
                m.insert("id".into(), json!(id));
                m.insert("created".into(), json!(created));
                m.insert("modified".into(), json!(modified));
                m.insert("created_by_ref".into(), json!(identity));
                m
            };
            let tenants = b.tenants.join(", ");
            let botnet_id = stix::sdo_id("infrastructure", &format!("botnest|{}|{created}", b.id));
            let mut botnet = common("infrastructure", botnet_id.clone());
            botnet.insert("name".into(), json!(format!("botnest {}", b.id)));
            botnet.insert(
                "description".into(),
                json!(format!(
                    "{} hosts found acting together (state {}, score {:.2}, tenants {tenants})",
                    b.members.len(),
                    b.json["state"].as_str().unwrap_or(""),
                    b.score
                )),
            );
            botnet.insert("infrastructure_types".into(), json!(["botnet"]));
            botnet.insert("first_seen".into(), json!(created));
            botnet.insert("last_seen".into(), json!(modified));
            add(&mut objects, Value::Object(botnet));

            let relate = |objects: &mut BTreeMap<String, Value>,
                          add: &mut dyn FnMut(&mut BTreeMap<String, Value>, Value) -> String,
                          kind: &str,
                          from: &str,
                          to: &str| {
                let id = stix::sdo_id("relationship", &format!("{kind}|{from}|{to}"));
                let mut r = common("relationship", id);
                r.insert("relationship_type".into(), json!(kind));
                r.insert("source_ref".into(), json!(from));
                r.insert("target_ref".into(), json!(to));
                add(objects, Value::Object(r));
            };

            let mut member_ids = Vec::new();
            for (m, _) in &b.members {
                let id = add(&mut objects, stix::address(m.1));
                member_ids.push(id);
            }
            for id in &member_ids {
                relate(&mut objects, &mut add, "consists-of", &botnet_id, id);
            }

            for c2 in b.json["c2"].as_array().into_iter().flatten() {
                let Some(text) = c2.as_str() else { continue };
                let Some((addr, port)) = stix::endpoint(text) else {
                    continue;
                };
                let addr_id = add(&mut objects, stix::address(addr));
                let infra_id = stix::sdo_id("infrastructure", &format!("c2|{text}"));
                let mut infra = common("infrastructure", infra_id.clone());
                infra.insert("name".into(), json!(format!("C2 {text}")));
                infra.insert(
                    "infrastructure_types".into(),
                    json!(["command-and-control"]),
                );
                infra.insert("first_seen".into(), json!(created));
                infra.insert("last_seen".into(), json!(modified));
                add(&mut objects, Value::Object(infra));
                let pattern = stix::pattern(addr, port);
                let ind_id = stix::sdo_id("indicator", &pattern);
                let mut ind = common("indicator", ind_id.clone());
                ind.insert(
                    "name".into(),
                    json!(format!("Traffic to C2 endpoint {text}")),
                );
                ind.insert(
                    "description".into(),
                    json!(format!("Command-and-control endpoint of botnest {}", b.id)),
                );
                ind.insert("indicator_types".into(), json!(["malicious-activity"]));
                ind.insert("pattern".into(), json!(pattern));
                ind.insert("pattern_type".into(), json!("stix"));
                ind.insert("pattern_version".into(), json!("2.1"));
                ind.insert("valid_from".into(), json!(created));
                add(&mut objects, Value::Object(ind));
                relate(&mut objects, &mut add, "indicates", &ind_id, &infra_id);
                relate(&mut objects, &mut add, "consists-of", &infra_id, &addr_id);
                relate(&mut objects, &mut add, "uses", &botnet_id, &infra_id);
            }

            let mut refs = Vec::new();
            let mut first = b.last_seen;
            let mut last = b.first_seen;
            for c in self.edges.iter().filter(|c| {
                b.members
                    .iter()
                    .any(|(m, _)| *m == c.client || *m == c.server)
            }) {
                let src = add(&mut objects, stix::address(c.client.1));
                let dst = add(&mut objects, stix::address(c.server.1));
                let ip = if c.client.1.is_ipv4() { "ipv4" } else { "ipv6" };
                let mut protocols = vec![json!(ip)];
                if let Some(p) = stix::protocol_name(c.proto) {
                    protocols.push(json!(p));
                }
                let (start, end) = (
                    rfc3339(c.first_seen),
                    rfc3339(c.last_seen.max(c.first_seen)),
                );
                let mut contributing = json!({
                    "start": start, "end": end, "src_ref": src, "dst_ref": dst,
                    "protocols": protocols,
                });
                if matches!(c.proto, 6 | 17 | 132) {
                    contributing["dst_port"] = json!(c.port);
                }
                let id = stix::sco_id("network-traffic", &contributing);
                let mut nt = contributing.clone();
                nt["type"] = json!("network-traffic");
                nt["spec_version"] = json!("2.1");
                nt["id"] = json!(id);
                nt["src_byte_count"] = json!(c.bytes_out);
                nt["dst_byte_count"] = json!(c.bytes_in);
                let id = add(&mut objects, nt);
                refs.extend([id, src, dst]);
                first = first.min(c.first_seen);
                last = last.max(c.last_seen);
            }
            if !refs.is_empty() {
                let mut seen = BTreeSet::new();
                refs.retain(|r| seen.insert(r.clone()));
                let id = stix::sdo_id("observed-data", &format!("{botnet_id}|{}", refs.join(",")));
                let mut od = common("observed-data", id.clone());
                od.insert("first_observed".into(), json!(rfc3339(first)));
                od.insert("last_observed".into(), json!(rfc3339(last.max(first))));
                let n = self
                    .edges
                    .iter()
                    .filter(|c| {
                        b.members
                            .iter()
                            .any(|(m, _)| *m == c.client || *m == c.server)
                    })
                    .map(|c| u64::from(c.flows))
                    .sum::<u64>()
                    .clamp(1, 999_999_999);
                od.insert("number_observed".into(), json!(n));
                od.insert("object_refs".into(), json!(refs));
                add(&mut objects, Value::Object(od));
                relate(&mut objects, &mut add, "related-to", &id, &botnet_id);
            }
        }
        let list: Vec<Value> = order.iter().filter_map(|id| objects.remove(id)).collect();
        let ids: Vec<&str> = list.iter().filter_map(|o| o["id"].as_str()).collect();
        json!({
            "type": "bundle",
            "id": stix::sdo_id("bundle", &ids.join(",")),
            "objects": list,
        })
    }
}

/// A ZIP archive of stored (uncompressed) files, enough to hand several CSV tables over in one
/// download (APPNOTE 6.3: local headers, central directory, end record).
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    // 1980-01-01 00:00, the earliest DOS time: the archive does not depend on the clock.
    let (time, date): (u16, u16) = (0, (1 << 5) | 1);
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes()); // made by: version 2.0
            }
            h.extend(20u16.to_le_bytes()); // needed to extract
            h.extend(0x0800u16.to_le_bytes()); // names are UTF-8
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(time.to_le_bytes());
            h.extend(date.to_le_bytes());
            h.extend(crc.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra field
            if central {
                h.extend(0u16.to_le_bytes()); // comment
                h.extend(0u16.to_le_bytes()); // disk
                h.extend(0u16.to_le_bytes()); // internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let start = out.len() as u32;
    let len = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The query of `/api/export/{format}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    botnest: Option<String>,
    #[serde(default)]
    table: Option<String>,
}

/// `GET /api/export/{format}?botnest=ID&table=nodes|edges`.
pub(crate) async fn export(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<crate::server::App>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    q: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, crate::server::ApiError> {
    use crate::server::ApiError;
    use axum::http::header;
    use axum::response::IntoResponse;

    let q = crate::api::query(q)?;
    let botnest = match q.botnest.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{s:?} is not a botnest id")))?,
        ),
        None => None,
    };
    let table = q.table.as_deref().filter(|s| !s.is_empty());
    let view = app.shared.view();
    let selection = Selection::of(&view, botnest)
        .ok_or_else(|| ApiError::not_found(format!("no botnest {}", botnest.unwrap_or(0))))?;
    let stem = match botnest {
        Some(id) => format!("botnest-{id}"),
        None => "botnests".to_owned(),
    };
    if name == "csv" && table.is_none() {
        let nodes = selection.render(Format::CsvNodes);
        let edges = selection.render(Format::CsvEdges);
        let body = zip(&[
            ("nodes.csv", nodes.as_bytes()),
            ("edges.csv", edges.as_bytes()),
        ]);
        let disposition = format!("attachment; filename=\"{stem}-csv.zip\"");
        return Ok((
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response());
    }
    let format = Format::parse(&name, table).map_err(ApiError::bad_request)?;
    let disposition = format!("attachment; filename=\"{stem}.{}\"", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        selection.render(format),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn xml_and_cypher_escapes_hold_hostile_text() {
        let evil = "a\"b'c<d>&e\nf`g\u{1}h\\";
        assert_eq!(
            xml_escape(evil),
            "a&quot;b&apos;c&lt;d&gt;&amp;e&#10;f`g\u{FFFD}h\\"
        );
        assert_eq!(cypher_escape(evil), "a\\\"b\\'c<d>&e\\nf`g\\u0001h\\\\");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = json!({"b": 1, "a": {"d": [1, "x"], "c": "y"}});
        assert_eq!(stix::canonical(&v), r#"{"a":{"c":"y","d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn address_ids_follow_the_stix_rule() {
        // STIX 2.1 section 2.9: UUIDv5 in the SCO namespace over {"value":"..."}.
        let a = stix::address("198.51.100.3".parse().unwrap());
        let expected = uuid::Uuid::new_v5(
            &uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7"),
            br#"{"value":"198.51.100.3"}"#,
        );
        assert_eq!(a["id"], format!("ipv4-addr--{expected}"));
    }

    /// Reads a Cypher string literal's body back.
    fn cypher_unescape(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\'' || c == '\n' || c == '\r' {
                return None; // would end the literal or the statement line
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest::proptest! {
        #[test]
        fn any_text_survives_xml(s in "\\PC*|[\\x00-\\x7f]*") {
            let e = xml_escape(&s);
            let doc = format!("<a v=\"{e}\">{e}</a>");
            let parsed = roxmltree::Document::parse(&doc).unwrap();
            let expected: String = s
                .chars()
                .map(|c| if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') { '\u{FFFD}' } else { c })
                .collect();
            proptest::prop_assert_eq!(parsed.root_element().attribute("v"), Some(expected.as_str()));
            proptest::prop_assert_eq!(parsed.root_element().text().unwrap_or(""), expected.as_str());
        }

        #[test]
        fn any_text_survives_cypher(s in "\\PC*|[\\x00-\\x7f]*") {
            let e = cypher_escape(&s);
            proptest::prop_assert_eq!(cypher_unescape(&e), Some(s));
        }
    }

    #[test]
    fn formats_are_named() {
        assert_eq!(Format::parse("csv", Some("edges")), Ok(Format::CsvEdges));
        assert!(Format::parse("csv", Some("x")).is_err());
        assert!(Format::parse("dot", None).is_err());
        assert!(Format::parse("gexf", Some("nodes")).is_err());
    }
}
