//! Storing and reading payments, events and idempotency keys.

use ivpay_domain::{
    AccountId, EventOutcome, Evidence, ForeignId, NewPayment, Payment, PaymentEvent, PaymentStatus,
    RefusalReason, ReportedStatus, UpdateSource,
};
use ivpay_ports::{
    Cursor, IdempotencyClaim, IntentInsert, PageRequest, PaymentFilter, PaymentStore,
    RepositoryError,
};

use crate::support::{
    Storage, TestDb, applied_event, at, created_upstream, id, intent, intent_with, listed_ids,
    move_to, shop, upstream,
};

pub(crate) async fn round_trip_keeps_every_field_and_exact_amounts(repo: impl Storage) {
    let request = NewPayment::from_fields(
        "10.50",
        "usd",
        Some("order-№7"),
        Some("https://shop.example/ok?x=1"),
        Some("https://shop.example/failed"),
    )
    .expect("valid request");
    let full = Payment::initiate(
        id(1),
        shop(),
        AccountId::default(),
        request,
        at(1_700_000_000),
    );
    let elsewhere = Payment::initiate(
        id(7),
        "kiosk".parse().expect("client"),
        "pos-2".parse().expect("account"),
        NewPayment::from_fields("1.00", "EUR", None, None, None).expect("valid"),
        at(1_700_000_006),
    );
    let cases = [
        full,
        elsewhere,
        intent(2, "100.00", 1_700_000_001),
        intent(3, "100", 1_700_000_002),
        intent_with(4, "1500", "JPY", None, 1_700_000_003),
        intent_with(5, "0.125", "BHD", None, 1_700_000_004),
        intent(6, "999999999999.99", 1_700_000_005),
    ];
    for p in &cases {
        assert_eq!(
            repo.insert_intent(p, None).await.expect("stored"),
            IntentInsert::Inserted
        );
    }
    for (p, text) in cases.iter().zip([
        "10.50",
        "1.00",
        "100.00",
        "100.00",
        "1500",
        "0.125",
        "999999999999.99",
    ]) {
        let back = repo.get(p.id()).await.expect("read").expect("present");
        assert_eq!(&back, p, "every field survives the round trip");
        assert_eq!(back.owner(), p.owner());
        assert_eq!(back.account(), p.account());
        assert_eq!(back.money().amount().to_string(), text);
    }
    assert_eq!(repo.get(id(99)).await.expect("read"), None);
}

pub(crate) async fn settled_outcomes_round_trip_and_link_ivpay_ids(repo: impl Storage) {
    let created = created_upstream(&repo, 1, 100, Some(160)).await;
    let by_id = repo.get(created.id()).await.expect("read");
    assert_eq!(by_id.as_ref(), Some(&created));
    let pid = created.payment_id().expect("linked").clone();
    assert_eq!(
        repo.get_by_payment_id(&pid).await.expect("read"),
        Some(created)
    );
    assert_eq!(
        repo.get_by_payment_id(&"nobody".parse().expect("valid"))
            .await
            .expect("read"),
        None
    );

    for (n, settle) in [(2u128, "rejected"), (3, "unknown"), (4, "abandoned")] {
        let mut p = intent(n, "5.00", 200);
        repo.insert_intent(&p, None).await.expect("stored");
        let read = p.version();
        let reason = format!("{settle} because of reasons");
        match settle {
            "rejected" => p.mark_rejected(reason, at(201)),
            "unknown" => p.mark_unknown(reason, at(201)),
            _ => p.mark_abandoned(reason, at(201)),
        }
        .expect("settles");
        repo.save_outcome(&p, read, None).await.expect("saved");
        let back = repo.get(p.id()).await.expect("read").expect("present");
        assert_eq!(back, p);
        assert_eq!(back.outcome().as_str(), settle);
    }
}

pub(crate) async fn ivpay_id_can_be_linked_to_one_payment_only(repo: impl Storage) {
    created_upstream(&repo, 1, 100, None).await;
    let mut other = intent(2, "1.00", 101);
    repo.insert_intent(&other, None).await.expect("stored");
    other
        .mark_created(upstream(1, 101), at(102))
        .expect("settles");
    let err = repo
        .save_outcome(&other, 1, None)
        .await
        .expect_err("IVPAY id already linked");
    assert!(
        matches!(err, RepositoryError::Duplicate { what: "payment_id" }),
        "{err:?}"
    );
    let stored = repo.get(id(2)).await.expect("read").expect("present");
    assert_eq!(
        stored.outcome().as_str(),
        "initiated",
        "nothing was written"
    );

    let err = repo
        .insert_intent(&intent(1, "1.00", 103), None)
        .await
        .expect_err("internal id taken");
    assert!(
        matches!(err, RepositoryError::Duplicate { what: "id" }),
        "{err:?}"
    );
}

pub(crate) async fn filters_narrow_by_status_foreign_id_and_creation_range(repo: impl Storage) {
    for n in 0..12u128 {
        let foreign = if n % 3 == 0 { Some("order-a") } else { None };
        let p = intent_with(n, "1.00", "EUR", foreign, 1_000 + n as i64 * 10);
        repo.insert_intent(&p, None).await.expect("stored");
    }
    let mut paid = created_upstream(&repo, 100, 1_005, None).await;
    move_to(&repo, &mut paid, PaymentStatus::Paid, 1_006).await;

    let page = |filter: PaymentFilter| listed_ids(&repo, filter);
    assert_eq!(page(PaymentFilter::default()).await.len(), 13);
    assert_eq!(
        page(PaymentFilter {
            status: Some(PaymentStatus::Paid),
            ..PaymentFilter::default()
        })
        .await,
        vec![id(100)]
    );
    assert_eq!(
        page(PaymentFilter {
            foreign_id: Some(ForeignId::try_from("order-a".to_owned()).expect("valid")),
            ..PaymentFilter::default()
        })
        .await,
        vec![id(9), id(6), id(3), id(0)],
        "newest first"
    );
    assert_eq!(
        page(PaymentFilter {
            created_from: Some(at(1_020)),
            created_to: Some(at(1_050)),
            ..PaymentFilter::default()
        })
        .await,
        vec![id(4), id(3), id(2)],
        "from is inclusive, to is exclusive"
    );
    assert_eq!(
        page(PaymentFilter {
            status: Some(PaymentStatus::Created),
            foreign_id: Some(ForeignId::try_from("order-a".to_owned()).expect("valid")),
            created_from: Some(at(1_030)),
            created_to: None,
            owner: Some(shop()),
            unresolved: false,
        })
        .await,
        vec![id(9), id(6), id(3)]
    );
}

pub(crate) async fn pages_stay_stable_while_rows_are_inserted(repo: impl Storage) {
    // 30 payments over 10 seconds: three share each second, so ties on created_at are
    // broken by id.
    for n in 0..30u128 {
        let p = intent(n, "2.00", 5_000 + (n as i64 % 10));
        repo.insert_intent(&p, None).await.expect("stored");
    }
    let mut expected: Vec<(i64, String)> = (0..30u128)
        .map(|n| (5_000 + (n as i64 % 10), id(n).to_string()))
        .collect();
    expected.sort();
    expected.reverse();

    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    let mut extra = 1_000u128;
    loop {
        let page = repo
            .list(&PaymentFilter::default(), PageRequest { after, limit: 7 })
            .await
            .expect("listed");
        assert!(page.items.len() <= 7);
        seen.extend(
            page.items
                .iter()
                .map(|p| (p.created_at().unix_seconds(), p.id().to_string())),
        );
        // Newer rows (and rows in the second the cursor sits in, with higher ids) arrive
        // between pages; none may appear in later pages or shift them.
        for _ in 0..3 {
            let newer = intent(extra, "3.00", 9_000 + extra as i64);
            repo.insert_intent(&newer, None).await.expect("stored");
            extra += 1;
        }
        if let Some(c) = page.next {
            let tie = intent(u128::MAX - extra, "3.00", c.created_at.unix_seconds());
            repo.insert_intent(&tie, None).await.expect("stored");
            extra += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every original row once, in order");

    let empty = repo
        .list(
            &PaymentFilter::default(),
            PageRequest {
                after: None,
                limit: 0,
            },
        )
        .await
        .expect("listed");
    assert!(empty.items.is_empty() && empty.next.is_none());
}

pub(crate) async fn foreign_id_lookup_lists_oldest_first(repo: impl Storage) {
    for (n, created) in [(1u128, 300), (2, 100), (3, 200)] {
        let p = intent_with(n, "1.00", "USD", Some("order-x"), created);
        repo.insert_intent(&p, None).await.expect("stored");
    }
    let other = intent_with(4, "1.00", "USD", Some("order-y"), 50);
    repo.insert_intent(&other, None).await.expect("stored");
    let found: Vec<_> = repo
        .find_by_foreign_id(&"order-x".parse().expect("valid"))
        .await
        .expect("found")
        .iter()
        .map(Payment::id)
        .collect();
    assert_eq!(found, vec![id(2), id(3), id(1)]);
}

pub(crate) async fn corrupt_rows_are_reported_not_returned(t: TestDb) {
    for n in 1..=3u128 {
        t.repo
            .insert_intent(&intent(n, "1.00", 10), None)
            .await
            .expect("stored");
    }
    // An amount with more decimals than USD allows, a created outcome without IVPAY's
    // answer, a URL the domain refuses. (The schema's CHECKs refuse some corruption, such
    // as version 0 or an unknown status, before it is written.)
    t.execute_raw(&format!(
        "UPDATE payments SET amount = '1.005' WHERE id = '{}'",
        id(1)
    ))
    .await;
    t.execute_raw(&format!(
        "UPDATE payments SET create_outcome = 'created' WHERE id = '{}'",
        id(2)
    ))
    .await;
    t.execute_raw(&format!(
        "UPDATE payments SET url_success = 'ftp://x' WHERE id = '{}'",
        id(3)
    ))
    .await;
    for n in 1..=3u128 {
        let err = t.repo.get(id(n)).await.expect_err("corrupt row");
        assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");
    }
    let err = t
        .repo
        .list(
            &PaymentFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect_err("a page with a corrupt row fails");
    assert!(matches!(err, RepositoryError::Corrupt(_)), "{err:?}");
}

pub(crate) async fn events_are_kept_in_order_including_unknown_payments(repo: impl Storage) {
    let mut p = created_upstream(&repo, 1, 100, Some(100)).await;
    let pid = p.payment_id().expect("linked").clone();
    move_to(&repo, &mut p, PaymentStatus::Pending, 110).await;

    let duplicate = PaymentEvent {
        payment: Some(p.id()),
        payment_id: pid.clone(),
        source: UpdateSource::Webhook,
        from: Some(PaymentStatus::Pending),
        to: ReportedStatus::Known(PaymentStatus::Pending),
        outcome: EventOutcome::Duplicate,
        evidence: Some(Evidence::from_webhook(r#"{"status":"PENDING"}"#)),
        received_at: at(2_000),
    };
    repo.record_event(&duplicate).await.expect("recorded");
    let unrecognized = PaymentEvent {
        to: ReportedStatus::Unknown("CANCELED".to_owned()),
        outcome: EventOutcome::UnrecognizedStatus,
        source: UpdateSource::Api,
        evidence: None,
        ..duplicate.clone()
    };
    repo.record_event(&unrecognized).await.expect("recorded");
    move_to(&repo, &mut p, PaymentStatus::Paid, 120).await;
    let refused = PaymentEvent {
        from: Some(PaymentStatus::Paid),
        to: ReportedStatus::Known(PaymentStatus::Timeout),
        outcome: EventOutcome::Refused(RefusalReason::ConflictingFinal),
        ..duplicate.clone()
    };
    repo.record_event(&refused).await.expect("recorded");
    let stranger = PaymentEvent {
        payment: None,
        payment_id: "someone-else".parse().expect("valid"),
        from: None,
        outcome: EventOutcome::UnknownPayment,
        ..duplicate.clone()
    };
    repo.record_event(&stranger).await.expect("recorded");

    let events = repo.events(p.id()).await.expect("events");
    let outcomes: Vec<_> = events.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            EventOutcome::Applied,
            EventOutcome::Duplicate,
            EventOutcome::UnrecognizedStatus,
            EventOutcome::Applied,
            EventOutcome::Refused(RefusalReason::ConflictingFinal),
        ]
    );
    assert_eq!(events[1], duplicate);
    assert_eq!(events[2], unrecognized);
    assert_eq!(events[4], refused);
    let paid = &events[3];
    assert_eq!(paid.payment, Some(p.id()));
    assert_eq!(paid.from, Some(PaymentStatus::Pending));
    assert_eq!(paid.to, ReportedStatus::Known(PaymentStatus::Paid));
    assert_eq!(
        paid.evidence.as_ref().and_then(Evidence::confirmation),
        Some("move to PAID")
    );

    let ghost = PaymentEvent {
        payment: Some(id(404)),
        ..duplicate
    };
    let err = repo
        .record_event(&ghost)
        .await
        .expect_err("no such payment");
    assert!(
        matches!(err, RepositoryError::NotFound(i) if i == id(404)),
        "{err:?}"
    );
}

pub(crate) async fn evidence_written_before_its_type_reads_as_its_parts(t: TestDb) {
    let p = created_upstream(&t.repo, 1, 100, None).await;
    let poll = r#"{"success":true,"data":{"payment_id":"ivpay1","status":"CREATED"}}"#;
    // What the service wrote before evidence had a type: a confirmed webhook, a webhook IVPAY
    // did not know, a duplicate recorded without a GET, a poll's bare answer.
    for (n, evidence) in [
        (
            1,
            r#"{"webhook":"{\"status\":\"PAID\"}","confirmation":"{\"success\":true}"}"#,
        ),
        (2, r#"{"webhook":"{}","confirmation":"not found at IVPAY"}"#),
        (3, r#"{"webhook":"{\"status\":\"CREATED\"}"}"#),
        (4, poll),
    ] {
        t.execute_raw(&format!(
            "INSERT INTO payment_events (internal_payment_id, ivpay_payment_id, source, \
             from_status, to_status, outcome, evidence, received_at) VALUES \
             ('{}', 'ivpay1', 'poll', 'CREATED', 'CREATED', 'duplicate', '{}', {n})",
            p.id(),
            evidence.replace('\'', "''")
        ))
        .await;
    }
    let read: Vec<_> = t
        .repo
        .events(p.id())
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.evidence.expect("kept"))
        .collect();
    let parts: Vec<_> = read
        .iter()
        .map(|e| (e.webhook(), e.confirmation(), e.note()))
        .collect();
    assert_eq!(
        parts,
        vec![
            (
                Some(r#"{"status":"PAID"}"#),
                Some(r#"{"success":true}"#),
                None
            ),
            (Some("{}"), None, Some("not found at IVPAY")),
            (Some(r#"{"status":"CREATED"}"#), None, None),
            (None, Some(poll), None),
        ]
    );
}

pub(crate) async fn events_come_back_oldest_first_ties_in_insertion_order(repo: impl Storage) {
    let p = created_upstream(&repo, 1, 100, None).await;
    for (n, received) in [(1, 300), (2, 100), (3, 200), (4, 100)] {
        let event = PaymentEvent {
            payment: Some(p.id()),
            payment_id: p.payment_id().expect("linked").clone(),
            source: UpdateSource::Poll,
            from: Some(PaymentStatus::Created),
            to: ReportedStatus::Known(PaymentStatus::Created),
            outcome: EventOutcome::Duplicate,
            evidence: Some(Evidence::from_confirmation(format!("event {n}"))),
            received_at: at(received),
        };
        repo.record_event(&event).await.expect("recorded");
    }
    let order: Vec<_> = repo
        .events(p.id())
        .await
        .expect("events")
        .into_iter()
        .filter_map(|e| {
            e.evidence
                .and_then(|ev| ev.confirmation().map(str::to_owned))
        })
        .collect();
    assert_eq!(order, ["event 2", "event 4", "event 3", "event 1"]);
}

pub(crate) async fn a_final_status_is_never_overwritten(repo: impl Storage) {
    let mut p = created_upstream(&repo, 1, 100, Some(150)).await;
    move_to(&repo, &mut p, PaymentStatus::Paid, 110).await;
    // A writer with the right version that decided wrongly: TIMEOUT over PAID. The state
    // machine never asks for this; storage refuses it anyway.
    let mut record = p.to_record();
    record.status = PaymentStatus::Timeout;
    record.version += 1;
    let wrong = Payment::restore(record).expect("a possible payment");
    let event = applied_event(&p, PaymentStatus::Timeout, "wrong".to_owned());
    let err = repo
        .update_status(&wrong, p.version(), &event)
        .await
        .expect_err("a final status stays");
    assert!(
        matches!(err, RepositoryError::VersionConflict { id: i, .. } if i == p.id()),
        "{err:?}"
    );
    assert_eq!(repo.get(p.id()).await.expect("read"), Some(p.clone()));
    assert_eq!(
        repo.events(p.id()).await.expect("events").len(),
        1,
        "only the PAID event"
    );
}

fn claim(key: &str, fingerprint: &str, expires: i64) -> IdempotencyClaim {
    IdempotencyClaim {
        client: "shop".parse().expect("valid"),
        key: key.parse().expect("valid"),
        fingerprint: fingerprint.to_owned(),
        expires_at: at(expires),
    }
}

pub(crate) async fn idempotency_key_is_taken_released_and_replaced_when_expired(
    repo: impl Storage,
) {
    let first = intent(1, "1.00", 1_000);
    assert_eq!(
        repo.insert_intent(&first, Some(claim("k-1", "fp-a", 2_000)))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );

    let second = intent(2, "1.00", 1_500);
    let IntentInsert::KeyTaken(record) = repo
        .insert_intent(&second, Some(claim("k-1", "fp-b", 2_500)))
        .await
        .expect("answered")
    else {
        panic!("key should be taken");
    };
    assert_eq!(record.payment, id(1));
    assert_eq!(record.fingerprint, "fp-a");
    assert_eq!(record.created_at, at(1_000));
    assert_eq!(record.expires_at, at(2_000));
    assert_eq!(record.key.as_str(), "k-1");
    assert_eq!(
        repo.get(id(2)).await.expect("read"),
        None,
        "a taken key writes no payment"
    );

    // Another client may use the same key text.
    let mut other_client = claim("k-1", "fp-c", 2_000);
    other_client.client = "other-shop".parse().expect("valid");
    assert_eq!(
        repo.insert_intent(&intent(3, "1.00", 1_500), Some(other_client))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );

    // Expired at the new payment's creation: replaced.
    let late = intent(4, "1.00", 2_000);
    assert_eq!(
        repo.insert_intent(&late, Some(claim("k-1", "fp-d", 3_000)))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );
    let IntentInsert::KeyTaken(record) = repo
        .insert_intent(&intent(5, "1.00", 2_001), Some(claim("k-1", "fp-e", 4_000)))
        .await
        .expect("answered")
    else {
        panic!("key should be taken by the replacement");
    };
    assert_eq!(
        (record.payment, record.fingerprint.as_str()),
        (id(4), "fp-d")
    );
}

pub(crate) async fn abandoning_one_payment_releases_its_key_and_no_other(repo: impl Storage) {
    let mut p = intent(1, "1.00", 1_000);
    repo.insert_intent(&p, Some(claim("k-1", "fp-a", 9_000)))
        .await
        .expect("stored");
    repo.insert_intent(&intent(2, "1.00", 1_000), Some(claim("k-2", "fp-b", 9_000)))
        .await
        .expect("stored");
    let read = p.version();
    p.mark_abandoned("abandoned by an operator".into(), at(1_001))
        .expect("initiated settles");
    repo.save_abandoned(&p, read).await.expect("settled");
    // k-1 is free again; k-2 still held by payment 2.
    assert_eq!(
        repo.insert_intent(&intent(3, "1.00", 1_001), Some(claim("k-1", "fp-c", 9_000)))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );
    let IntentInsert::KeyTaken(record) = repo
        .insert_intent(&intent(4, "1.00", 1_001), Some(claim("k-2", "fp-b", 9_000)))
        .await
        .expect("answered")
    else {
        panic!("k-2 belongs to payment 2");
    };
    assert_eq!(record.payment, id(2));
}

pub(crate) async fn lost_compare_and_set_writes_nothing(repo: impl Storage) {
    let mut p = created_upstream(&repo, 1, 100, Some(150)).await;
    let stale = p.clone();
    move_to(&repo, &mut p, PaymentStatus::Pending, 110).await;

    let mut late = stale.clone();
    let event = applied_event(&late, PaymentStatus::Timeout, "late".to_owned());
    let read = late.version();
    late.apply_status(PaymentStatus::Timeout, None, at(120));
    let err = repo
        .update_status(&late, read, &event)
        .await
        .expect_err("stale version");
    assert!(
        matches!(err, RepositoryError::VersionConflict { id: i, expected } if i == p.id() && expected == read),
        "{err:?}"
    );
    assert_eq!(repo.get(p.id()).await.expect("read"), Some(p.clone()));
    assert_eq!(
        repo.events(p.id()).await.expect("events").len(),
        1,
        "no event"
    );

    let err = repo
        .save_outcome(&late, read, None)
        .await
        .expect_err("stale version");
    assert!(
        matches!(err, RepositoryError::VersionConflict { .. }),
        "{err:?}"
    );

    let ghost = intent(9, "1.00", 1);
    let err = repo
        .update_status(
            &ghost,
            1,
            &applied_event(&ghost, PaymentStatus::Paid, String::new()),
        )
        .await
        .expect_err("no such payment");
    assert!(
        matches!(err, RepositoryError::NotFound(i) if i == id(9)),
        "{err:?}"
    );
}

pub(crate) async fn expired_idempotency_keys_are_purged_in_bounded_batches(repo: impl Storage) {
    use ivpay_ports::{IdempotencyClaim, IntentInsert};
    for n in 1..=5u128 {
        let claim = IdempotencyClaim {
            client: "shop".parse().expect("client"),
            key: format!("k{n}").parse().expect("key"),
            fingerprint: "f".into(),
            // Keys 1–3 expire at 100, keys 4–5 at 1000.
            expires_at: at(if n <= 3 { 100 } else { 1000 }),
        };
        let inserted = repo
            .insert_intent(&intent(n, "1.00", 10), Some(claim))
            .await
            .expect("stored");
        assert_eq!(inserted, IntentInsert::Inserted);
    }
    assert_eq!(
        repo.purge_expired_keys(at(99), 10).await.expect("purged"),
        0
    );
    assert_eq!(
        repo.purge_expired_keys(at(100), 2).await.expect("purged"),
        2,
        "bounded"
    );
    assert_eq!(
        repo.purge_expired_keys(at(100), 10).await.expect("purged"),
        1
    );
    assert_eq!(
        repo.purge_expired_keys(at(5000), 10).await.expect("purged"),
        2
    );
    // The payments themselves stay.
    assert!(repo.get(id(1)).await.expect("read").is_some());
}

pub(crate) async fn a_listing_for_one_owner_holds_only_its_payments(repo: impl Storage) {
    let kiosk: ivpay_domain::ClientId = "kiosk".parse().expect("client");
    for n in 0..6u128 {
        let owner = if n % 2 == 0 { shop() } else { kiosk.clone() };
        let p = Payment::initiate(
            id(n),
            owner,
            AccountId::default(),
            NewPayment::from_fields("1.00", "USD", None, None, None).expect("valid"),
            at(2_000 + n as i64),
        );
        repo.insert_intent(&p, None).await.expect("stored");
    }
    let listed = |owner: ivpay_domain::ClientId| {
        listed_ids(
            &repo,
            PaymentFilter {
                owner: Some(owner),
                ..PaymentFilter::default()
            },
        )
    };
    assert_eq!(listed(shop()).await, vec![id(4), id(2), id(0)]);
    assert_eq!(listed(kiosk).await, vec![id(5), id(3), id(1)]);
    assert_eq!(listed("nobody".parse().expect("client")).await, vec![]);
}

pub(crate) async fn unresolved_lists_only_unknown_and_initiated_outcomes(repo: impl Storage) {
    // 0: initiated (no answer yet); 1: created; 2..=4: rejected, unknown, abandoned.
    repo.insert_intent(&intent(0, "1.00", 300), None)
        .await
        .expect("stored");
    created_upstream(&repo, 1, 301, None).await;
    for (n, settle) in [(2u128, "rejected"), (3, "unknown"), (4, "abandoned")] {
        let mut p = intent(n, "5.00", 300 + n as i64);
        repo.insert_intent(&p, None).await.expect("stored");
        let read = p.version();
        match settle {
            "rejected" => p.mark_rejected("no".into(), at(310)),
            "unknown" => p.mark_unknown("timed out".into(), at(310)),
            _ => p.mark_abandoned("never sent".into(), at(310)),
        }
        .expect("settles");
        repo.save_outcome(&p, read, None).await.expect("saved");
    }
    let open = listed_ids(
        &repo,
        PaymentFilter {
            unresolved: true,
            ..PaymentFilter::default()
        },
    )
    .await;
    assert_eq!(
        open,
        vec![id(3), id(0)],
        "unknown and initiated, newest first"
    );
    let all = listed_ids(&repo, PaymentFilter::default()).await;
    assert_eq!(all.len(), 5, "without the filter every outcome is listed");
}
