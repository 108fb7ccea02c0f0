//! `lienthong demo`: a new data directory filled with a plausible year of
//! Hữu Lũng — plans, directives and official letters from the departments
//! and the committee, communes reporting back, paper records falling toward
//! the target, registrations, assignments and completions, some late, one
//! revocation and its replacement — through the real gRPC API with real
//! signatures, so that `serve --data DIR` then shows a year worth reading.
//!
//! The year is the current one (Vietnam time), from its first working day
//! to yesterday (in early January before any working day: the last year). The server runs in this process on the directory, its
//! clock moved to each working day in turn: acceptance times, arrival
//! numbers, the report's months and every on-time judgement are the
//! service's own, as if the year had happened. Everything is planned first
//! from the seed ([`plan`]), so a seed always gives the same year.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prost::Message;
use time::{Date, Month};
use tonic::transport::Channel;

use crate::calendar::Calendar;
use crate::client;
use crate::clock::{self, format_date, Clock};
use crate::crypto::SigningKey;
use crate::directory::Directory;
use crate::lifecycle::Code;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;
use crate::pki::{self, PkiPaths};
use crate::server::{self, ServerConfig};

/// Documents of a default demo year: about a minute on a laptop.
pub const DEFAULT_DOCUMENTS: u64 = 3_000;

/// Requests in flight at once within one step of a day.
const IN_FLIGHT: usize = 32;

/// The share of paper in January and in December: it falls month by month
/// toward the 90% electronic target.
const PAPER_JANUARY: f64 = 0.35;
const PAPER_DECEMBER: f64 = 0.08;

/// What a demo did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoReport {
    pub first_day: String,
    pub last_day: String,
    /// Documents issued: sent electronically, or recorded as going out on
    /// paper (the replacement included).
    pub documents: u64,
    pub paper: u64,
    /// Incoming paper records made by their recipients.
    pub paper_received: u64,
    pub status_changes: u64,
    pub revoked: u64,
    pub seconds: f64,
}

/// One step of the demo done, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Steps done in all, and how many there are.
    pub done: u64,
    pub total: u64,
}

/// A small, fast, deterministic generator (SplitMix64).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `k` distinct items of `items` (all of them if fewer).
    fn some<T: Copy>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let mut out = Vec::new();
        while out.len() < k && !pool.is_empty() {
            out.push(pool.swap_remove(self.below(pool.len())));
        }
        out
    }
}

/// What a planned document is about, by who issues it.
const DEPARTMENT_TOPICS: &[&str] = &[
    "triển khai công tác cải cách hành chính",
    "tăng cường phòng cháy, chữa cháy mùa hanh khô",
    "rà soát hộ nghèo, hộ cận nghèo",
    "chuẩn bị năm học mới",
    "kiểm tra công tác hộ tịch, chứng thực",
    "quản lý đất đai và xử lý vi phạm",
    "phòng, chống dịch bệnh trên đàn gia súc",
    "chi trả trợ cấp cho người có công",
    "tuyên truyền phổ biến, giáo dục pháp luật",
    "thu gom, xử lý rác thải sinh hoạt",
    "xây dựng nông thôn mới",
    "lập dự toán ngân sách năm sau",
    "chuyển đổi số trong cơ quan nhà nước",
    "thi đua, khen thưởng cuối năm",
    "tổ chức các hoạt động văn hóa, thể thao dịp lễ",
];

const COMMITTEE_TOPICS: &[&str] = &[
    "tăng cường kỷ luật, kỷ cương hành chính",
    "đẩy mạnh giải ngân vốn đầu tư công",
    "phòng, chống thiên tai và tìm kiếm cứu nạn",
    "gửi, nhận văn bản điện tử giữa các cơ quan hành chính",
    "bảo đảm trật tự an toàn giao thông",
    "thực hiện nhiệm vụ phát triển kinh tế – xã hội",
];

const COMMUNE_TOPICS: &[&str] = &[
    "đề nghị hỗ trợ kinh phí sửa chữa đường giao thông nông thôn",
    "đề nghị phê duyệt danh sách hộ nghèo",
    "xin chủ trương xây dựng nhà văn hóa thôn",
    "đề nghị cấp giấy chứng nhận quyền sử dụng đất",
];

/// An organisation of the demo, by its index in the directory.
type Org = usize;

/// A document the demo issues.
#[derive(Debug, Clone)]
struct Planned {
    day: Date,
    from: Org,
    to: Vec<Org>,
    /// A type code the service knows (`KH`, `CT`, `BC`, `cong-van`, ...).
    kind: &'static str,
    subject: String,
    due: Option<Date>,
    urgent: bool,
    paper: bool,
    reply_to: Option<usize>,
    replaces: Option<usize>,
}

/// A step of a recipient's handling, in the order they happen in a day.
#[derive(Debug, Clone, Copy)]
enum Step {
    Rejected,
    Registered,
    Assigned(Date),
    Completed,
    /// Agrees to the sender's revocation.
    Agreed,
}

/// Something done on a day, through the API.
#[derive(Debug, Clone)]
enum Action {
    Issue(usize),
    Revoke(usize),
    /// The recipient records its copy of a paper document.
    RecordIncoming {
        document: usize,
        by: Org,
    },
    Status {
        document: usize,
        by: Org,
        steps: Vec<Step>,
    },
}

impl Action {
    /// Actions of a day run in phases, each at its hour of the day, so that
    /// what depends on another comes after it.
    fn phase(&self, plan: &Plan) -> usize {
        match self {
            Action::Issue(d) if plan.documents[*d].replaces.is_some() => 2,
            Action::Issue(_) => 0,
            Action::Revoke(_) => 1,
            Action::RecordIncoming { .. } => 2,
            Action::Status { .. } => 3,
        }
    }
}

/// The hour of day (Vietnam time) of each phase.
const PHASE_HOURS: [i64; 4] = [8, 9, 10, 14];

struct Plan {
    aliases: Vec<String>,
    documents: Vec<Planned>,
    days: BTreeMap<Date, Vec<Action>>,
    steps: u64,
}

/// The organisations of the directory by kind.
struct Kinds {
    committee: Vec<Org>,
    office: Vec<Org>,
    departments: Vec<Org>,
    communes: Vec<Org>,
}

impl Kinds {
    fn of(directory: &Directory) -> Kinds {
        let of = |kind: &str| -> Vec<Org> {
            (0..directory.organizations().len())
                .filter(|&i| directory.organizations()[i].kind == kind)
                .collect()
        };
        Kinds {
            committee: of("committee"),
            office: of("office"),
            departments: of("department"),
            communes: of("commune"),
        }
    }
}

/// The working days of `year` before `today`.
fn working_days(calendar: &Calendar, year: i32, today: Date) -> Vec<Date> {
    let mut days = Vec::new();
    let Ok(mut day) = Date::from_calendar_date(year, Month::January, 1) else {
        return days;
    };
    while day < today {
        if calendar.is_working_day(day) {
            days.push(day);
        }
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    days
}

/// Plans `count` documents over the working days of `today`'s year before
/// it, and what each recipient does with them.
fn plan(directory: &Directory, calendar: &Calendar, today: Date, count: u64, seed: u64) -> Plan {
    let kinds = Kinds::of(directory);
    let mut random = Random(seed);
    let mut days = working_days(calendar, today.year(), today);
    if days.is_empty() {
        // The first days of January: the year just ended instead.
        if let Ok(new_year) = Date::from_calendar_date(today.year(), Month::January, 1) {
            days = working_days(calendar, today.year() - 1, new_year);
        }
    }
    let mut documents: Vec<Planned> = Vec::new();
    // Electronic documents each commune received, for its reports back.
    let mut received: HashMap<Org, Vec<usize>> = HashMap::new();
    let revoke_day = days.get(days.len() / 5).copied();
    let mut revoked: Option<usize> = None;
    let per_day = count / days.len().max(1) as u64;
    let extra = count % days.len().max(1) as u64;
    for (i, &day) in days.iter().enumerate() {
        let month = u8::from(day.month()) as f64;
        let paper_share = PAPER_JANUARY - (PAPER_JANUARY - PAPER_DECEMBER) * (month - 1.0) / 11.0;
        let today_count = per_day + u64::from((i as u64) < extra);
        for _ in 0..today_count {
            let index = documents.len();
            let mut d = match revoked {
                // The slot after the revoked one holds its replacement.
                Some(r) if !documents.iter().any(|d| d.replaces.is_some()) => {
                    let mut replacement = documents[r].clone();
                    replacement.day = day;
                    replacement.subject = format!("{} (thay thế)", documents[r].subject);
                    replacement.replaces = Some(r);
                    replacement.due = replacement.due.map(|due| calendar.add_working_days(due, 5));
                    replacement
                }
                _ => issue(&mut random, &kinds, calendar, day, &received, &documents),
            };
            d.paper = d.replaces.is_none() && random.chance(paper_share);
            if d.paper {
                d.reply_to = None;
            }
            if revoked.is_none()
                && revoke_day.is_some_and(|r| day >= r)
                && !d.paper
                && d.to.len() >= 2
                && kinds.departments.contains(&d.from)
            {
                revoked = Some(index);
            }
            if !d.paper && Some(index) != revoked {
                for &r in &d.to {
                    if kinds.communes.contains(&r) && !kinds.communes.contains(&d.from) {
                        received.entry(r).or_default().push(index);
                    }
                }
            }
            documents.push(d);
        }
    }
    let mut days_plan: BTreeMap<Date, Vec<Action>> = BTreeMap::new();
    let mut steps = 0u64;
    let mut add = |day: Date, action: Action| {
        steps += 1;
        days_plan.entry(day).or_default().push(action);
    };
    for (index, d) in documents.iter().enumerate() {
        add(d.day, Action::Issue(index));
        if Some(index) == revoked {
            add(d.day, Action::Revoke(index));
            for &by in &d.to {
                add(
                    d.day,
                    Action::Status {
                        document: index,
                        by,
                        steps: vec![Step::Agreed],
                    },
                );
            }
            continue;
        }
        for &by in &d.to {
            let arrival = if d.paper {
                let arrival = calendar.add_working_days(d.day, 1 + random.below(3) as u32);
                if arrival >= today {
                    continue;
                }
                add(
                    arrival,
                    Action::RecordIncoming {
                        document: index,
                        by,
                    },
                );
                arrival
            } else {
                d.day
            };
            for (day, steps) in handling(&mut random, calendar, d, arrival, today) {
                add(
                    day,
                    Action::Status {
                        document: index,
                        by,
                        steps,
                    },
                );
            }
        }
    }
    Plan {
        aliases: directory
            .organizations()
            .iter()
            .map(|o| o.alias.clone())
            .collect(),
        documents,
        days: days_plan,
        steps,
    }
}

/// A new document of `day`: who sends what to whom.
fn issue(
    random: &mut Random,
    kinds: &Kinds,
    calendar: &Calendar,
    day: Date,
    received: &HashMap<Org, Vec<usize>>,
    documents: &[Planned],
) -> Planned {
    let due_in = |random: &mut Random, low: u32, spread: usize| {
        Some(calendar.add_working_days(day, low + random.below(spread) as u32))
    };
    let roll = random.below(100);
    let mut d = Planned {
        day,
        from: 0,
        to: Vec::new(),
        kind: "cong-van",
        subject: String::new(),
        due: None,
        urgent: random.chance(0.05),
        paper: false,
        reply_to: None,
        replaces: None,
    };
    if roll < 40 {
        // A department to communes: a plan, a directive or a letter.
        d.from = *random.pick(&kinds.departments);
        let n = if random.chance(0.06) {
            kinds.communes.len()
        } else {
            1 + random.below(4)
        };
        d.to = random.some(&kinds.communes, n);
        let topic = random.pick(DEPARTMENT_TOPICS);
        (d.kind, d.subject) = match random.below(20) {
            0..=5 => ("KH", format!("Kế hoạch {topic} năm {}", day.year())),
            6..=8 => ("CT", format!("Về việc {topic}")),
            _ => ("cong-van", format!("V/v {topic}")),
        };
        if d.kind != "cong-van" || random.chance(0.3) {
            d.due = due_in(random, 8, 15);
        }
    } else if roll < 55 {
        // A department to another, or up to the committee's office.
        d.from = *random.pick(&kinds.departments);
        let mut others: Vec<Org> = kinds
            .departments
            .iter()
            .copied()
            .filter(|&o| o != d.from)
            .collect();
        others.extend(&kinds.office);
        let n = 1 + random.below(2);
        d.to = random.some(&others, n);
        d.subject = format!("V/v phối hợp {}", random.pick(DEPARTMENT_TOPICS));
        if random.chance(0.4) {
            d.due = due_in(random, 5, 10);
        }
    } else if roll < 65 {
        // The committee or its office, down to departments and communes.
        let committee = random.chance(0.5);
        let from = if committee {
            &kinds.committee
        } else {
            &kinds.office
        };
        d.from = *random.pick(from);
        let mut all = kinds.departments.clone();
        all.extend(&kinds.communes);
        let n = 2 + random.below(5);
        d.to = random.some(&all, n);
        let topic = random.pick(COMMITTEE_TOPICS);
        (d.kind, d.subject) = match (committee, random.below(3)) {
            (true, 0) => ("CT", format!("Về việc {topic}")),
            (true, 1) => ("KH", format!("Kế hoạch {topic}")),
            (false, 0) => ("TB", format!("Thông báo kết luận về {topic}")),
            _ => ("cong-van", format!("V/v {topic}")),
        };
        if random.chance(0.6) {
            d.due = due_in(random, 5, 15);
        }
    } else {
        // A commune reports back on what it received, or asks.
        d.from = *random.pick(&kinds.communes);
        // Documents of earlier days: those of today are sent concurrently.
        let recent: Vec<usize> = received
            .get(&d.from)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .rev()
            .copied()
            .filter(|&r| documents[r].day < day)
            .take(20)
            .collect();
        match (recent.is_empty(), random.chance(0.7)) {
            (false, true) => {
                let answered = *random.pick(&recent);
                let original = &documents[answered];
                d.kind = "BC";
                d.to = vec![original.from];
                d.reply_to = Some(answered);
                d.subject = format!(
                    "Báo cáo kết quả thực hiện: {}",
                    lowercase_first(&original.subject)
                );
            }
            _ => {
                let mut up = kinds.departments.clone();
                up.extend(&kinds.office);
                d.to = vec![*random.pick(&up)];
                let topic = random.pick(COMMUNE_TOPICS);
                (d.kind, d.subject) = if random.chance(0.5) {
                    ("TTr", format!("Tờ trình {topic}"))
                } else {
                    ("cong-van", format!("V/v {topic}"))
                };
            }
        }
    }
    d
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a recipient does with a delivery that arrived on `arrival`, by
/// day: mostly registered the same day, some the next, some late; some
/// assigned with a deadline; most completed, some late; a few rejected.
/// Nothing on or after `today`: what is left is still open.
fn handling(
    random: &mut Random,
    calendar: &Calendar,
    d: &Planned,
    arrival: Date,
    today: Date,
) -> Vec<(Date, Vec<Step>)> {
    let mut out: Vec<(Date, Vec<Step>)> = Vec::new();
    if !d.paper && random.chance(0.03) {
        return vec![(arrival, vec![Step::Rejected])];
    }
    let delay = match random.below(100) {
        0..=77 => 0,
        78..=91 => 1,
        _ => 2 + random.below(5) as u32,
    };
    let registered = calendar.add_working_days(arrival, delay);
    if registered >= today {
        return out;
    }
    let mut steps = vec![Step::Registered];
    let deadline = if d.due.is_some() || random.chance(0.5) {
        let deadline = d
            .due
            .unwrap_or_else(|| calendar.add_working_days(registered, 5 + random.below(8) as u32));
        steps.push(Step::Assigned(deadline));
        Some(deadline)
    } else {
        None
    };
    let completed = match deadline {
        Some(deadline) if random.chance(0.82) => {
            let early = calendar.add_working_days(registered, random.below(4) as u32);
            Some(early.min(deadline).max(registered))
        }
        Some(deadline) => {
            Some(calendar.add_working_days(deadline.max(registered), 1 + random.below(6) as u32))
        }
        None if random.chance(0.5) => {
            Some(calendar.add_working_days(registered, random.below(5) as u32))
        }
        None => None,
    };
    let mut later = None;
    match completed {
        Some(day) if day == registered => steps.push(Step::Completed),
        Some(day) if day < today => later = Some((day, vec![Step::Completed])),
        _ => {}
    }
    out.push((registered, steps));
    out.extend(later);
    out
}

/// Connections and keys of every organisation, and what the demo learnt
/// as it went: the ids of what it issued and recorded.
struct Running {
    aliases: Vec<String>,
    /// The issuer part of each organisation's notations.
    abbreviations: Vec<String>,
    clients: Vec<ExchangeClient<Channel>>,
    /// Each organisation's kind (`department`, `commune`, ...).
    kinds: Vec<String>,
    keys: Vec<SigningKey>,
    documents: Vec<Planned>,
    /// Issued document → (id, number).
    issued: Mutex<HashMap<usize, (String, u64)>>,
    /// (paper document, recipient) → the id of the recipient's record.
    recorded: Mutex<HashMap<(usize, Org), String>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Running {
    fn issued(&self, document: usize) -> Result<(String, u64), String> {
        locked(&self.issued)
            .get(&document)
            .cloned()
            .ok_or_else(|| format!("document {document} was not issued"))
    }

    fn notation(&self, d: &Planned) -> String {
        let abbreviation = self.abbreviation(d.from);
        match d.kind {
            "cong-van" => format!("{abbreviation}-VP"),
            kind => format!("{kind}-{abbreviation}"),
        }
    }

    fn abbreviation(&self, org: Org) -> &str {
        &self.abbreviations[org]
    }
}

/// Who signs a document of `org`'s kind, as printed under it.
fn signer(kind: &str) -> pb::Signer {
    let (competence, position, full_name) = match kind {
        "committee" => ("TM.", "Chủ tịch", "Nguyễn Văn A"),
        "office" => ("KT.", "Phó Chánh Văn phòng", "Trần Thị B"),
        "commune" => ("TM.", "Chủ tịch", "Lê Văn C"),
        _ => ("", "Trưởng phòng", "Hoàng Thị D"),
    };
    pb::Signer {
        competence: competence.into(),
        position: position.into(),
        full_name: full_name.into(),
    }
}

/// The instant `hour` o'clock on `day`, Vietnam time, in Unix ms.
fn at_hour(day: Date, hour: i64) -> i64 {
    let midnight_utc = day.midnight().assume_utc().unix_timestamp();
    (midnight_utc + (hour - 7) * 3_600) * 1_000
}

fn refused(what: &'static str) -> impl Fn(tonic::Status) -> String {
    move |s| format!("{what} refused: {:?}: {}", s.code(), s.message())
}

impl Running {
    async fn act(&self, action: &Action) -> Result<(), String> {
        match action {
            Action::Issue(i) => self.issue(*i).await,
            Action::Revoke(i) => {
                let d = &self.documents[*i];
                let message = pb::StatusMessage {
                    document_id: self.issued(*i)?.0,
                    from: self.aliases[d.from].clone(),
                    operation: pb::Operation::Revoke as i32,
                    description: "Thu hồi để điều chỉnh thời hạn thực hiện".into(),
                    ..Default::default()
                };
                let (status, signature) = self.signed_status(d.from, &message)?;
                self.clients[d.from]
                    .clone()
                    .revoke(pb::RevokeRequest { status, signature })
                    .await
                    .map_err(refused("the revocation"))?;
                Ok(())
            }
            Action::RecordIncoming { document, by } => {
                let d = &self.documents[*document];
                let record = pb::PaperRecord {
                    direction: pb::PaperDirection::Incoming as i32,
                    organization: self.aliases[*by].clone(),
                    counterpart: self.aliases[d.from].clone(),
                    number: self.issued(*document)?.1,
                    notation: self.notation(d),
                    document_type: d.kind.into(),
                    promulgation_date: format_date(d.day),
                    subject: d.subject.clone(),
                    scan: None,
                };
                let request = client::paper_request(record, None, &self.keys[*by])?;
                let recorded = self.clients[*by]
                    .clone()
                    .record_paper(request)
                    .await
                    .map_err(refused("the incoming paper record"))?
                    .into_inner();
                locked(&self.recorded).insert((*document, *by), recorded.id);
                Ok(())
            }
            Action::Status {
                document,
                by,
                steps,
            } => {
                let id = if self.documents[*document].paper {
                    locked(&self.recorded)
                        .get(&(*document, *by))
                        .cloned()
                        .ok_or_else(|| format!("document {document} was not recorded"))?
                } else {
                    self.issued(*document)?.0
                };
                for step in steps {
                    self.change(&id, *by, *step).await?;
                }
                Ok(())
            }
        }
    }

    async fn issue(&self, i: usize) -> Result<(), String> {
        let d = &self.documents[i];
        let mut client = self.clients[d.from].clone();
        let sent = if d.paper {
            let counterpart = match d.to.as_slice() {
                [one] => self.aliases[*one].clone(),
                many => format!("{} cơ quan, đơn vị (gửi bản giấy)", many.len()),
            };
            let record = pb::PaperRecord {
                direction: pb::PaperDirection::Outgoing as i32,
                organization: self.aliases[d.from].clone(),
                counterpart,
                number: 0,
                notation: self.notation(d),
                document_type: d.kind.into(),
                promulgation_date: format_date(d.day),
                subject: d.subject.clone(),
                scan: None,
            };
            let request = client::paper_request(record, None, &self.keys[d.from])?;
            client
                .record_paper(request)
                .await
                .map_err(refused("the outgoing paper record"))?
        } else {
            let header = pb::Document {
                from: self.aliases[d.from].clone(),
                to: d.to.iter().map(|&o| self.aliases[o].clone()).collect(),
                number: 0,
                notation: self.notation(d),
                place: "Hữu Lũng".into(),
                promulgation_date: format_date(d.day),
                document_type: d.kind.into(),
                subject: d.subject.clone(),
                signer: Some(signer(&self.kinds[d.from])),
                due_date: d.due.map(format_date).unwrap_or_default(),
                urgency: if d.urgent {
                    pb::Urgency::Khan as i32
                } else {
                    pb::Urgency::Normal as i32
                },
                reply_to: match d.reply_to {
                    Some(r) => self.issued(r)?.0,
                    None => String::new(),
                },
                supersedes: match d.replaces {
                    Some(r) => Some(pb::Supersedes {
                        document_id: self.issued(r)?.0,
                        operation: pb::Operation::Replace as i32,
                        reason: "Thay thế văn bản đã thu hồi: điều chỉnh thời hạn".into(),
                    }),
                    None => None,
                },
                ..Default::default()
            };
            let request = client::send_request(header, Vec::new(), None, &self.keys[d.from])?;
            client.send(request).await.map_err(refused("the send"))?
        }
        .into_inner();
        locked(&self.issued).insert(i, (sent.id, sent.number));
        Ok(())
    }

    fn signed_status(
        &self,
        by: Org,
        message: &pb::StatusMessage,
    ) -> Result<(Vec<u8>, Option<pb::DocumentSignature>), String> {
        let bytes = message.encode_to_vec();
        let (key_id, signature) = self.keys[by]
            .sign_status(&bytes)
            .map_err(|e| format!("cannot sign: {e}"))?;
        Ok((bytes, Some(pb::DocumentSignature { key_id, signature })))
    }

    async fn change(&self, id: &str, by: Org, step: Step) -> Result<(), String> {
        let commune = self.kinds[by] == "commune";
        let mut message = pb::StatusMessage {
            document_id: id.into(),
            from: self.aliases[by].clone(),
            staff: Some(pb::StaffInfo {
                department: if commune {
                    "Văn phòng UBND"
                } else {
                    "Bộ phận văn thư"
                }
                .into(),
                name: "Văn thư".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let code = match step {
            Step::Rejected => {
                message.description = "Gửi nhầm: văn bản không thuộc thẩm quyền giải quyết".into();
                Code::Rejected
            }
            Step::Registered => Code::Registered,
            Step::Assigned(deadline) => {
                message.assigned_to = if commune {
                    "Công chức Văn phòng – Thống kê"
                } else {
                    "Chuyên viên phụ trách lĩnh vực"
                }
                .into();
                message.deadline = format_date(deadline);
                Code::Assigned
            }
            Step::Completed => {
                message.description = "Đã giải quyết xong".into();
                Code::Completed
            }
            Step::Agreed => {
                message.description = "Đồng ý thu hồi, đã dừng sử dụng văn bản".into();
                Code::Agreed
            }
        };
        message.code = code as i32;
        let (status, signature) = self.signed_status(by, &message)?;
        self.clients[by]
            .clone()
            .change_status(pb::ChangeStatusRequest { status, signature })
            .await
            .map_err(refused("a status change"))?;
        Ok(())
    }
}

/// Dates the development PKI's signing keys from 1 January of `year`: it
/// issues them valid from yesterday, and the demo signs the whole year.
fn date_keys_from(registry: &Path, year: i32) -> Result<(), String> {
    let text = std::fs::read_to_string(registry)
        .map_err(|e| format!("cannot read {}: {e}", registry.display()))?;
    let rows: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("not_before") {
                format!("not_before = \"{year:04}-01-01T00:00:00+07:00\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(registry, rows.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", registry.display()))
}

/// Fills `data_dir` — new or empty — with a demo year of `count`
/// documents planned from `seed`, reporting each step done to `progress`.
/// The directory is then an ordinary one for `serve --data`.
pub async fn demo(
    data_dir: &Path,
    count: u64,
    seed: u64,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<DemoReport, String> {
    let started = Instant::now();
    if let Ok(mut entries) = std::fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty: the demo fills a new data directory (give another --data)",
                data_dir.display()
            ));
        }
    }
    let directory = Directory::builtin().map_err(|e| e.to_string())?;
    let calendar = Calendar::builtin();
    let today = clock::today();
    let plan = plan(&directory, &calendar, today, count, seed);
    let (Some(first), Some(last)) = (
        plan.days.keys().next().copied(),
        plan.days.keys().next_back().copied(),
    ) else {
        return Err(format!(
            "nothing to fill: --documents must be at least 1 (got {count})"
        ));
    };
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let paths = PkiPaths::new(data_dir.join("pki"));
    pki::ensure_dev_pki(&paths, &directory).map_err(|e| e.to_string())?;
    date_keys_from(&paths.signing_keys(), first.year())?;

    let clock = Clock::starting_at(at_hour(first, PHASE_HOURS[0]));
    let mut config = ServerConfig::new(data_dir);
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.clock = clock.clone();
    // A year of sends in minutes: far above any organisation's real rate.
    config.network.org_sends_per_minute = 0;
    let server = server::start(config).await.map_err(|e| e.to_string())?;
    let url = format!("https://{}", server.addr);
    let mut clients = Vec::new();
    let mut keys = Vec::new();
    for alias in &plan.aliases {
        clients.push(
            client::connect_as(&url, &paths.dir, alias)
                .await
                .map_err(|e| e.to_string())?,
        );
        keys.push(pki::find_signing_key(&paths, alias).map_err(|e| e.to_string())?);
    }
    let mut report = DemoReport {
        first_day: format_date(first),
        last_day: format_date(last),
        documents: plan.documents.len() as u64,
        paper: plan.documents.iter().filter(|d| d.paper).count() as u64,
        ..Default::default()
    };
    for action in plan.days.values().flatten() {
        match action {
            Action::RecordIncoming { .. } => report.paper_received += 1,
            Action::Status { steps, .. } => report.status_changes += steps.len() as u64,
            Action::Revoke(_) => report.revoked += 1,
            Action::Issue(_) => {}
        }
    }
    let phases: Vec<(Date, usize, Vec<Action>)> = plan
        .days
        .iter()
        .flat_map(|(day, actions)| {
            (0..PHASE_HOURS.len()).map(|phase| {
                let of_phase = actions
                    .iter()
                    .filter(|a| a.phase(&plan) == phase)
                    .cloned()
                    .collect();
                (*day, phase, of_phase)
            })
        })
        .collect();
    let running = Arc::new(Running {
        abbreviations: directory
            .organizations()
            .iter()
            .map(|o| o.abbreviation().unwrap_or("VP").to_owned())
            .collect(),
        kinds: directory
            .organizations()
            .iter()
            .map(|o| o.kind.clone())
            .collect(),
        aliases: plan.aliases,
        clients,
        keys,
        documents: plan.documents,
        issued: Mutex::default(),
        recorded: Mutex::default(),
    });
    let total = plan.steps;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut outcome = Ok(());
    'days: for (day, phase, actions) in phases {
        clock.set(at_hour(day, PHASE_HOURS[phase]));
        let mut tasks = tokio::task::JoinSet::new();
        for action in actions {
            let (running, permits, done, progress) = (
                running.clone(),
                permits.clone(),
                done.clone(),
                progress.clone(),
            );
            tasks.spawn(async move {
                let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                running
                    .act(&action)
                    .await
                    .map_err(|e| format!("{}: {action:?}: {e}", format_date(day)))?;
                let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(Progress { done, total });
                Ok::<(), String>(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined.map_err(|e| e.to_string()).and_then(|r| r) {
                outcome = Err(e);
                break 'days;
            }
        }
    }
    drop(running);
    let stopped = server.shutdown().await.map_err(|e| e.to_string());
    outcome?;
    stopped?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
