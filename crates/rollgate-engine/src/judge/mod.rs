//! Canary judges that compare the new revision against the stable one (the baseline) measured
//! over the same intervals, as rollgate extensions of AnalysisTemplate metrics.
//!
//! - [`sequential`]: an anytime-valid sequential test on event counts (errors, or requests
//!   slower than an SLO bucket). It may be looked at after every scrape and fails the metric the
//!   moment its e-value reaches `1/alpha`, with false rollbacks bounded by `alpha` however many
//!   looks are taken.
//! - [`kayenta`]: Spinnaker Kayenta's fixed-horizon judge (Mann-Whitney U per metric,
//!   classification, scoring), for teams coming from Spinnaker. It has no repeated-look
//!   guarantee.
//!
//! Pure code: no I/O, no clock.

pub mod kayenta;
pub mod sequential;
