//! Changing a Rollout's strategy (blue/green <-> canary) hands every Service the previous
//! strategy pinned over to a hash with ready pods, or back to its plain selector.

use crate::support;

use rollgate_api::RolloutStrategy;
use serde_json::json;
use support::*;

/// The canary strategy the blue/green worlds switch to: `services` adds canary/stable Services.
fn to_canary(w: &mut World, canary: serde_json::Value) {
    let strategy: RolloutStrategy =
        serde_json::from_value(json!({"canary": canary})).expect("canary strategy");
    w.edit_spec(|s| s.strategy = strategy);
}

/// Every Service that pins a hash pins one whose ReplicaSet has ready pods (but the preview and
/// canary Services of the current strategy, which show a revision before it serves).
fn assert_services_serve(w: &World) {
    let strategy = &w.rollout.spec.strategy;
    let previews = [
        strategy
            .blue_green
            .as_ref()
            .and_then(|b| b.preview_service.clone()),
        strategy
            .canary
            .as_ref()
            .and_then(|c| c.canary_service.clone()),
    ];
    for (name, svc) in &w.observed.services {
        if previews.contains(&Some(name.clone())) {
            continue;
        }
        if let Some(h) = &svc.selected_hash {
            let rs = w
                .observed
                .replica_set(h)
                .unwrap_or_else(|| panic!("Service {name} selects {h}, which has no ReplicaSet"));
            assert!(
                rs.ready.min(rs.available) > 0,
                "Service {name} selects {h}, which has no ready pod"
            );
        }
    }
}

#[test]
fn blue_green_to_canary_without_services_releases_the_active_service() {
    let (mut w, h1) = World::deployed(json!({}), json!({}));
    assert_eq!(w.active(), Some(h1.clone()));
    to_canary(
        &mut w,
        json!({"steps": [{"setWeight": 50}, {"pause": {"duration": "0s"}}]}),
    );
    let h2 = w.set_image("app:2");
    for _ in 0..20 {
        w.step();
        assert_services_serve(&w);
        w.make_all_ready();
        assert_services_serve(&w);
    }
    assert_eq!(w.status().stable_rs, Some(h2));
    assert_eq!(
        w.active(),
        None,
        "the active Service is back on its plain selector"
    );
    assert_eq!(
        w.preview(),
        None,
        "the preview Service is back on its plain selector"
    );
}

#[test]
fn blue_green_to_canary_with_the_active_service_as_stable_service() {
    let (mut w, h1) = World::deployed(json!({}), json!({}));
    to_canary(
        &mut w,
        json!({"stableService": ACTIVE, "steps": [{"setWeight": 50}, {"pause": {"duration": "0s"}}]}),
    );
    assert_eq!(w.active(), Some(h1));
    let h2 = w.set_image("app:2");
    for _ in 0..20 {
        w.step();
        assert_services_serve(&w);
        w.make_all_ready();
        assert_services_serve(&w);
    }
    assert_eq!(w.status().stable_rs, Some(h2.clone()));
    assert_eq!(
        w.active(),
        Some(h2),
        "the stable Service follows the new stable"
    );
    assert_eq!(w.preview(), None);
}

#[test]
fn canary_to_blue_green_releases_the_canary_services() {
    let (mut w, h1) = World::canary_deployed(json!({}), json!({"steps": [{"setWeight": 50}]}));
    assert_eq!(w.selects(STABLE_SVC), Some(h1.clone()));
    w.add_service(ACTIVE);
    w.add_service(PREVIEW);
    let strategy: RolloutStrategy = serde_json::from_value(json!({"blueGreen": {
        "activeService": ACTIVE, "previewService": PREVIEW, "autoPromotionEnabled": true}}))
    .expect("blue/green strategy");
    w.edit_spec(|s| s.strategy = strategy);
    let h2 = w.set_image("app:2");
    for _ in 0..20 {
        w.step();
        assert_services_serve(&w);
        w.make_all_ready();
        assert_services_serve(&w);
    }
    assert_eq!(w.status().stable_rs, Some(h2.clone()));
    assert_eq!(w.active(), Some(h2));
    assert_eq!(w.selects(STABLE_SVC), None);
    assert_eq!(w.selects(CANARY_SVC), None);
}

#[test]
fn renaming_the_active_service_releases_the_old_one() {
    let (mut w, h1) = World::deployed(json!({}), json!({}));
    w.add_service("web-live");
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.active_service = Some("web-live".into());
        }
    });
    w.run_until_settled();
    assert_eq!(w.selects("web-live"), Some(h1));
    assert_eq!(w.active(), None, "the old active Service is released");
}

#[test]
fn an_invalid_spec_releases_nothing() {
    let (mut w, h1) = World::deployed(json!({}), json!({}));
    to_canary(&mut w, json!({"steps": [{"setWeight": 150}]}));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.active(), Some(h1));
}
