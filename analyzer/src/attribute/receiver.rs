//! The receiving side: why a backup took over (or a second master appeared) while the
//! master's adverts kept flowing. See `docs/verdicts.md`, "receiver".
//!
//! The backup acts on the master-down interval before it took over: in that span it
//! should have read the master's adverts. The rules, in order:
//! 1. Its keepalived was stopped, frozen or starved of CPU for most of that span →
//!    `receiver`, with the same evidence as for a sender (signal and its sender, freezer
//!    state, who held the CPU).
//! 2. The master's adverts reached the backup's own capture point but its keepalived
//!    returned from no receive syscall on the socket it reads adverts from → `receiver`:
//!    dropped inside the machine, between the NIC and the socket (a firewall, a socket
//!    filter, a wrong interface).
//! 3. The adverts did not reach the backup's capture point while the master's own saw
//!    them on time → `network`.
//! 4. Anything else (it read the adverts and still took over; its syscalls or its
//!    capture point were not recorded) → `inconclusive`, naming what is missing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::path::covers;
use super::sender::{self, Send, SAME_MACHINE_TOLERANCE_NS};
use super::timeline::Span;
use super::verdict::{Finding, Found, Judge, Judgement};
use super::windows::Window;
use super::{at, dur};
use crate::model::{GapContext, Incident, StreamKey, TaskState, Verdict};

/// The master-down interval assumed when the streams do not give one: VRRP's at a 1 s
/// interval and a backup of priority 100.
const DEFAULT_MASTER_DOWN_NS: i64 = 3_609_375_000;

impl Judge<'_> {
    /// The verdict of a takeover or split-brain: the router that took over is examined
    /// over the master-down interval before it did. `None` with packets only.
    pub fn takeover(&self, inc: &Incident, w: Window) -> Option<Judgement> {
        if self.bundles.is_empty() {
            return None;
        }
        let master = super::router_stream(inc, inc.src);
        let mut context = super::base_context(self, &master, w);
        let taker = inc
            .failovers
            .iter()
            .map(|f| f.to)
            .chain(inc.routers.iter().copied())
            .find(|r| *r != inc.src);
        let Some(taker) = taker else {
            let f = Finding::inconclusive("no other router advertised as master");
            return Some(self.conclude(f, context, w, (inc.start.0, inc.end.0)));
        };
        let took_over = inc.start.0;
        let deaf = (took_over - master_down_ns(inc), took_over);
        let interval = (inc.interval_ms * 1e6) as i64;
        let taker_key = super::router_stream(inc, taker);
        let finding = match self.find_task(&taker_key, "", w, interval, &mut context) {
            Err(mut f) => {
                f.evidence.insert(
                    0,
                    format!("the keepalived of {taker}, which took over, was not found"),
                );
                f
            }
            Ok(found) => self.receiver_side(inc, &master, taker, &found, (deaf, w), &context),
        };
        Some(self.conclude(finding, context, w, deaf))
    }

    fn receiver_side(
        &self,
        inc: &Incident,
        master: &StreamKey,
        taker: IpAddr,
        found: &Found<'_>,
        ((a, b), w): ((i64, i64), Window),
        context: &GapContext,
    ) -> Finding {
        let Found {
            sender: backup,
            data,
            spans,
            ..
        } = found;
        let who = format!("{} {} ({taker})", backup.comm, backup.tid);
        let intro = format!(
            "{taker} began to advertise as master at {} while {} still did: its keepalived is {} ({})",
            at(b),
            inc.src,
            backup.tid,
            backup.reason
        );
        let in_state = |st: TaskState| -> Vec<&Span> {
            spans
                .iter()
                .filter(|s| s.state == st && s.end > a && s.start < b)
                .collect()
        };
        let time_in = |st: TaskState| -> i64 {
            in_state(st)
                .iter()
                .map(|s| s.end.min(b) - s.start.max(a))
                .sum()
        };
        let half = (b - a) / 2;
        let mut f = if time_in(TaskState::Stopped) > half {
            let mut f = self.stopped(data, backup, &in_state(TaskState::Stopped), &who);
            f.summary = format!("the backup {who} was stopped and could not hear the master");
            Some(f)
        } else if time_in(TaskState::Frozen) > half {
            let mut f =
                super::sender_side::frozen(data, backup, &in_state(TaskState::Frozen), &who);
            f.summary = format!("the backup {who} was frozen and could not hear the master");
            Some(f)
        } else if time_in(TaskState::Runnable) > half {
            let mut f = super::sender_side::runnable(
                data,
                backup,
                &in_state(TaskState::Runnable),
                context,
                &who,
                a,
                b,
            );
            f.summary = format!("the backup {who} was starved of CPU: {}", f.summary);
            Some(f)
        } else {
            None
        }
        .map(|mut f| {
            f.verdict = Verdict::Receiver;
            f
        })
        .unwrap_or_else(|| self.deaf(inc, master, found, &who, (a, b), w.start));
        f.evidence.insert(0, intro);
        f
    }

    /// The backup ran: did the adverts reach it, and did it read them?
    fn deaf(
        &self,
        inc: &Incident,
        master: &StreamKey,
        found: &Found<'_>,
        who: &str,
        (a, b): (i64, i64),
        recorded_from: i64,
    ) -> Finding {
        let Found {
            sender: backup,
            data,
            ..
        } = found;
        let span = Window { start: a, end: b };
        let threshold = (inc.threshold_ms.max(inc.interval_ms * 1.5) * 1e6) as i64;
        let Some(nic) = backup.capture.clone() else {
            return Finding::inconclusive(format!(
                "{who}'s own capture point is unknown: record its interface with -i to see whether the adverts reached it"
            ));
        };
        let heard = self.packets.sender_times(master, &nic, span);
        let own_captures: Vec<String> = self
            .packets
            .captures_of_sender(master, span)
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| covers(&self.packets.sender_times(master, c, span), a, b, threshold))
            .collect();
        if heard.is_empty() || !covers(&heard, a, b, threshold) {
            if own_captures.is_empty() {
                return Finding::inconclusive(format!(
                    "the adverts of {} were seen on time at no capture point from {} to {}",
                    inc.src,
                    at(a),
                    at(b)
                ));
            }
            let mut f = Finding::new(
                Verdict::Network,
                format!(
                    "{}'s adverts did not reach {nic}, the capture point of {who}",
                    inc.src
                ),
            );
            f.evidence.push(format!(
                "{} adverts of {} at {nic} from {} to {}; on time at {}",
                heard.len(),
                inc.src,
                at(a),
                at(b),
                own_captures.join(", ")
            ));
            return f;
        }
        if !data.syscalls_recorded(backup.tid, a, b) {
            return Finding::inconclusive(format!(
                "{} adverts of {} reached {nic} from {} to {}, but no syscalls of {who} were recorded: record with --comm 'keepalived*' to see whether it read them",
                heard.len(),
                inc.src,
                at(a),
                at(b)
            ));
        }
        // The socket it reads adverts on: the fd whose receives followed the most
        // adverts at its interface, over the whole window (before the deaf span too).
        let all_recvs = sender::receives(data.events_in(recorded_from, b), backup.tid, data.arch());
        let heard_before = self.packets.sender_times(
            master,
            &nic,
            Window {
                start: recorded_from,
                end: b,
            },
        );
        let socket = advert_socket(&all_recvs, &heard_before);
        let read: Vec<&Send> = all_recvs
            .iter()
            .filter(|r| r.exit >= a && r.exit <= b && socket.is_none_or(|fd| r.fd == fd))
            .collect();
        let fd = socket.map_or_else(|| "any socket".to_string(), |fd| format!("fd {fd}"));
        if read.is_empty() {
            let mut f = Finding::new(
                Verdict::Receiver,
                format!(
                    "{}'s adverts reached {nic} but {who} never read them: dropped inside the receiver (a firewall, a socket filter, a wrong interface)",
                    inc.src
                ),
            );
            f.evidence.push(format!(
                "{} adverts of {} reached {nic} from {} to {}, never more than {} apart",
                heard.len(),
                inc.src,
                at(a),
                at(b),
                dur(max_spacing(&heard))
            ));
            let before = all_recvs
                .iter()
                .filter(|r| r.exit < a && socket.is_none_or(|s| r.fd == s))
                .count();
            f.evidence.push(format!(
                "{who} returned from no receive syscall on {fd} from {} to {} ({before} in the {} before, as each advert arrived)",
                at(a),
                at(b),
                dur(a - recorded_from)
            ));
            return f;
        }
        Finding::inconclusive(format!(
            "{who} read {} adverts on {fd} from {} to {} and still took over: keepalived's own logic (priorities, configuration), which the recording does not show",
            read.len(),
            at(a),
            at(b)
        ))
    }
}

/// The silence after which the backup acts: the master's master-down interval.
pub fn master_down_ns(inc: &Incident) -> i64 {
    inc.critical_after_ms
        .map_or(DEFAULT_MASTER_DOWN_NS, |m| (m * 1e6) as i64)
}

/// The fd whose receives returned right after the most adverts arrived.
fn advert_socket(recvs: &[Send], adverts: &[i64]) -> Option<u64> {
    let mut by_fd: BTreeMap<u64, usize> = BTreeMap::new();
    for &p in adverts {
        let i = recvs.partition_point(|r| r.exit < p);
        if let Some(r) = recvs.get(i) {
            if r.exit - p <= SAME_MACHINE_TOLERANCE_NS {
                *by_fd.entry(r.fd).or_default() += 1;
            }
        }
    }
    by_fd.into_iter().max_by_key(|(_, n)| *n).map(|(fd, _)| fd)
}

fn max_spacing(times: &[i64]) -> i64 {
    times
        .windows(2)
        .filter_map(|p| Some(p.get(1)? - p.first()?))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(exit: i64, fd: u64) -> Send {
        Send {
            enter: Some(exit - 10),
            fd,
            exit,
            nr: 47,
            tid: 1,
        }
    }

    #[test]
    fn the_advert_socket_is_the_one_read_right_after_adverts() {
        let ms = 1_000_000;
        // fd 7 is read 1 ms after each advert; fd 3 (netlink) at random other times.
        let recvs = [
            recv(100 * ms, 3),
            recv(1001 * ms, 7),
            recv(1500 * ms, 3),
            recv(2001 * ms, 7),
        ];
        assert_eq!(advert_socket(&recvs, &[1000 * ms, 2000 * ms]), Some(7));
        assert_eq!(advert_socket(&recvs, &[]), None);
    }
}
