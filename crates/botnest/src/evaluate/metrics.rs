//! Scores: the per-host confusion matrix and the time-window metric of CTU-13.

use super::truth::FlowClass;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A confusion matrix with its rates; a rate with an empty denominator is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Confusion {
    /// Infected and flagged.
    pub tp: u64,
    /// Clean and flagged.
    pub fp: u64,
    /// Infected and not flagged.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Clean and not flagged.
    pub tn: u64,
    /// tp / (tp + fp).
    pub precision: Option<f64>,
    /// tp / (tp + fn).
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Option<f64>,
}

impl Confusion {
    /// Counts (truth, verdict) pairs: `true` is infected or flagged.
    pub fn count(pairs: impl IntoIterator<Item = (bool, bool)>) -> Confusion {
        let mut c = Confusion::default();
        for (infected, flagged) in pairs {
            match (infected, flagged) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (true, false) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c.precision = ratio(c.tp as f64, (c.tp + c.fp) as f64);
        c.recall = ratio(c.tp as f64, (c.tp + c.fn_) as f64);
        c.f1 = f_measure(c.precision, c.recall);
        c
    }
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// F1: 2PR / (P + R); zero when both are zero.
fn f_measure(precision: Option<f64>, recall: Option<f64>) -> Option<f64> {
    let (p, r) = (precision?, recall?);
    Some(if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    })
}

/// What the metric knows of one source address in one window: the class of its flows (the
/// highest of them, [`FlowClass`] order) and whether the detector called it a bot.
pub type WindowEntry = (FlowClass, bool);

/// The time-window metric of S. Garcia, M. Grill, J. Stiborek and A. Zunino, "An empirical
/// comparison of botnet detection methods", Computers & Security 45 (2014) 100-123, section 6.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CtuMetric {
    /// Length of a comparison window, seconds.
    pub window_seconds: u64,
    /// The alpha of the correction function.
    pub alpha: f64,
    /// Windows with at least one address of a known class.
    pub windows: u64,
    /// Unweighted counts of (window, address) pairs.
    pub counts: Confusion,
    /// Weighted true positives.
    pub t_tp: f64,
    /// Weighted false negatives.
    pub t_fn: f64,
    /// Weighted false positives.
    pub t_fp: f64,
    /// Weighted true negatives.
    pub t_tn: f64,
    /// tTP / (tTP + tFP).
    pub precision: Option<f64>,
    /// tTP / (tTP + tFN), the paper's TPR.
    pub recall: Option<f64>,
    /// tFP / (tFP + tTN).
    pub fpr: Option<f64>,
    /// F-measure (beta 1) of the weighted precision and recall.
    pub f1: Option<f64>,
}

/// The paper's alpha: the correction function falls from 2 towards 1 over a few hundred
/// windows.
pub const CTU_ALPHA: f64 = 0.01;

impl CtuMetric {
    /// Computes the metric over windows numbered from 1 (`t`, the window's number counted
    /// from the start of the capture, as in the paper's reference implementation).
    ///
    /// In each window every source address is counted once, as botnet when any of its flows
    /// in the window is, as normal when any is and none is botnet; background addresses are
    /// not counted. Its prediction is positive when the detector called it a bot during the
    /// window. Then, with Nb botnet and Nn normal addresses in window t and the correction
    /// function fc(t) = e^(-alpha t) + 1 that rewards early detection:
    /// tTP += TP fc(t) / Nb, tFN += FN fc(t) / Nb, tFP += FP / Nn, tTN += TN / Nn.
    /// Precision, recall (TPR), FPR and F1 follow from the sums.
    pub fn compute<'a>(
        windows: impl IntoIterator<Item = (u64, &'a BTreeMap<IpAddr, WindowEntry>)>,
        window_seconds: u64,
        alpha: f64,
    ) -> CtuMetric {
        let mut m = CtuMetric {
            window_seconds,
            alpha,
            ..Default::default()
        };
        let mut all = Vec::new();
        for (t, entries) in windows {
            let pairs: Vec<(bool, bool)> = entries
                .values()
                .filter(|(class, _)| *class != FlowClass::Background)
                .map(|(class, predicted)| (*class == FlowClass::Botnet, *predicted))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            m.windows += 1;
            m.add_window(t, &Confusion::count(pairs.iter().copied()), alpha);
            all.extend(pairs);
        }
        m.counts = Confusion::count(all);
        m.precision = ratio(m.t_tp, m.t_tp + m.t_fp);
        m.recall = ratio(m.t_tp, m.t_tp + m.t_fn);
        m.fpr = ratio(m.t_fp, m.t_fp + m.t_tn);
        m.f1 = f_measure(m.precision, m.recall);
        m
    }

    fn add_window(&mut self, t: u64, c: &Confusion, alpha: f64) {
        let correction = (-alpha * t as f64).exp() + 1.0;
        let bots = (c.tp + c.fn_) as f64;
        let normals = (c.fp + c.tn) as f64;
        if bots > 0.0 {
            self.t_tp += c.tp as f64 * correction / bots;
            self.t_fn += c.fn_ as f64 * correction / bots;
        }
        if normals > 0.0 {
            self.t_fp += c.fp as f64 / normals;
            self.t_tn += c.tn as f64 / normals;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn host_confusion_gives_precision_recall_and_f1() {
        let c = Confusion::count([(true, true), (true, false), (false, true), (false, false)]);
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), (1, 1, 1, 1));
        assert!(close(c.precision.unwrap(), 0.5));
        assert!(close(c.recall.unwrap(), 0.5));
        assert!(close(c.f1.unwrap(), 0.5));
    }

    #[test]
    fn rates_without_a_denominator_are_absent_not_nan() {
        let c = Confusion::count([(false, false)]);
        assert_eq!(c.precision, None);
        assert_eq!(c.recall, None);
        assert_eq!(c.f1, None);
        let c = Confusion::count([(true, false)]);
        assert_eq!(c.precision, None);
        assert_eq!(c.recall, Some(0.0));
    }

    fn window(entries: &[(&str, FlowClass, bool)]) -> BTreeMap<IpAddr, WindowEntry> {
        entries
            .iter()
            .map(|(a, c, p)| (a.parse().unwrap(), (*c, *p)))
            .collect()
    }

    #[test]
    fn time_window_metric_weights_positives_by_window_and_normalises_by_addresses() {
        use FlowClass::*;
        // Window 1: one bot missed, two normal hosts, one wrongly flagged.
        let w1 = window(&[
            ("10.0.0.1", Botnet, false),
            ("10.0.0.2", Normal, true),
            ("10.0.0.3", Normal, false),
        ]);
        // Window 3: the bot found; a background address is not counted.
        let w3 = window(&[
            ("10.0.0.1", Botnet, true),
            ("10.0.0.3", Normal, false),
            ("10.0.0.9", Background, true),
        ]);
        let m = CtuMetric::compute([(1, &w1), (3, &w3)], 120, CTU_ALPHA);
        let fc1 = (-0.01f64).exp() + 1.0;
        let fc3 = (-0.03f64).exp() + 1.0;
        assert_eq!(m.windows, 2);
        assert!(close(m.t_fn, fc1));
        assert!(close(m.t_tp, fc3));
        assert!(close(m.t_fp, 0.5));
        assert!(close(m.t_tn, 0.5 + 1.0));
        assert!(close(m.recall.unwrap(), fc3 / (fc1 + fc3)));
        assert!(close(m.precision.unwrap(), fc3 / (fc3 + 0.5)));
        assert!(close(m.fpr.unwrap(), 0.25));
        assert_eq!(
            (m.counts.tp, m.counts.fn_, m.counts.fp, m.counts.tn),
            (1, 1, 1, 2)
        );
    }

    #[test]
    fn earlier_detection_scores_higher_recall_weight() {
        use FlowClass::*;
        let found = window(&[("10.0.0.1", Botnet, true)]);
        let missed = window(&[("10.0.0.1", Botnet, false)]);
        let early = CtuMetric::compute([(1, &found), (100, &missed)], 120, CTU_ALPHA);
        let late = CtuMetric::compute([(1, &missed), (100, &found)], 120, CTU_ALPHA);
        assert!(early.recall.unwrap() > 0.5);
        assert!(late.recall.unwrap() < 0.5);
    }

    #[test]
    fn windows_with_only_background_are_not_counted() {
        let w = window(&[("10.0.0.9", FlowClass::Background, true)]);
        let m = CtuMetric::compute([(1, &w)], 120, CTU_ALPHA);
        assert_eq!(m.windows, 0);
        assert_eq!(m.precision, None);
    }
}
