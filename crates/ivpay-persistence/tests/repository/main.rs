//! The repository suite: every behaviour is written once and runs on SQLite (a temporary
//! file, always), on PostgreSQL (a fresh database per test, when `IVPAY_TEST_DATABASE_URL`
//! is set; with `IVPAY_REQUIRE_POSTGRES=1` a missing URL fails) and on the in-memory fake
//! (`ivpay_ports::fakes::InMemoryRepository`), so the fake keeps the contract the service
//! and router tests rely on. Behaviours that reach under the ports (raw SQL, migrations)
//! run on the databases only. Each database's tests need its feature (`sqlite`,
//! `postgres`; both by default), so a build with one driver runs its part.

mod abandon;
mod concurrency;
mod inbox;
mod migrations;
mod notifications;
mod payments;
mod quarantine;
mod schedule;
mod support;

/// Declares one test per behaviour and backend: `sqlite::name`, `postgres::name` and, for
/// the behaviours that speak only through the ports, `memory::name`.
macro_rules! suite {
    (
        every_backend: [$($module:ident :: $name:ident),* $(,)?],
        databases_only: [$($db_module:ident :: $db_name:ident),* $(,)?] $(,)?
    ) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::support::on_sqlite(|t| crate::$module::$name(t.repo)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $db_name() {
                    crate::support::on_sqlite(crate::$db_module::$db_name).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::support::on_postgres(stringify!($name), |t| {
                        crate::$module::$name(t.repo)
                    })
                    .await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $db_name() {
                    crate::support::on_postgres(stringify!($db_name), crate::$db_module::$db_name)
                        .await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$module::$name(ivpay_ports::fakes::InMemoryRepository::new()).await;
                }
            )*
        }
    };
}

suite! {
    every_backend: [
        payments::round_trip_keeps_every_field_and_exact_amounts,
        payments::settled_outcomes_round_trip_and_link_ivpay_ids,
        payments::ivpay_id_can_be_linked_to_one_payment_only,
        payments::filters_narrow_by_status_foreign_id_and_creation_range,
        payments::pages_stay_stable_while_rows_are_inserted,
        payments::a_listing_for_one_owner_holds_only_its_payments,
        payments::foreign_id_lookup_lists_oldest_first,
        payments::events_are_kept_in_order_including_unknown_payments,
        payments::events_come_back_oldest_first_ties_in_insertion_order,
        payments::a_final_status_is_never_overwritten,
        payments::idempotency_key_is_taken_released_and_replaced_when_expired,
        payments::lost_compare_and_set_writes_nothing,
        payments::abandoning_one_payment_releases_its_key_and_no_other,
        payments::expired_idempotency_keys_are_purged_in_bounded_batches,
        concurrency::racing_status_updates_lose_no_event_and_never_leave_a_final_state,
        concurrency::racing_claims_on_one_key_insert_exactly_once,
        concurrency::concurrent_claimers_get_each_due_row_once,
        schedule::only_due_non_final_upstream_payments_are_claimed_and_leased,
        schedule::final_status_leaves_the_schedule,
        schedule::save_outcome_sets_the_first_check,
        schedule::schedule_check_sets_time_and_attempts,
        schedule::stale_intents_are_only_old_initiated_rows_oldest_first,
        schedule::unknown_outcomes_are_counted,
        schedule::open_payments_are_counted_by_age,
        schedule::a_stale_claimer_cannot_overwrite_the_schedule_of_the_one_that_took_over,
        inbox::webhooks_are_kept_claimed_once_retried_and_finished,
        inbox::a_stale_inbox_claimer_can_neither_retry_nor_finish,
        abandon::abandoning_settles_and_releases_the_key_or_neither,
        abandon::abandoning_releases_only_a_key_that_names_the_payment,
        inbox::pending_webhooks_are_listed_oldest_first_with_their_next_attempt,
        payments::unresolved_lists_only_unknown_and_initiated_outcomes,
        notifications::a_change_writes_one_notice_per_listening_endpoint_with_one_message_id,
        notifications::every_settled_outcome_is_announced_to_the_endpoints_that_want_it,
        notifications::a_lost_compare_and_set_writes_no_notice,
        notifications::a_change_before_the_last_is_written_out_announces_both_as_they_were,
        notifications::the_backlog_counts_what_is_owed_and_what_is_pending,
        notifications::concurrent_deliverers_lease_each_notification_once,
        notifications::a_deliverer_that_lost_its_lease_records_nothing,
        notifications::each_attempt_moves_its_notification_to_what_comes_next,
        notifications::redelivery_and_recovery_send_again_in_a_new_round,
        notifications::the_delivery_log_lists_newest_first_by_filter_and_page,
        notifications::endpoints_are_saved_replaced_disabled_and_marked_failing,
        notifications::retention_purges_old_settled_rows_in_batches,
    ],
    databases_only: [
        payments::corrupt_rows_are_reported_not_returned,
        payments::evidence_written_before_its_type_reads_as_its_parts,
        migrations::migrations_go_up_down_and_up_again,
        migrations::health_reports_the_backend_and_its_settings,
        migrations::instances_migrating_at_once_all_succeed,
        migrations::rows_from_before_tenancy_have_no_owner_until_adopted,
        migrations::a_hosts_connection_and_migrator_carry_ivpay_storage,
        quarantine::unreadable_rows_are_quarantined_and_the_rest_of_the_batch_proceeds,
        quarantine::a_fixed_row_released_by_the_operator_is_claimed_again,
        quarantine::stale_intent_and_unknown_scans_use_their_partial_indexes,
        abandon::a_failed_key_release_leaves_the_intent_untouched,
        notifications::notices_cost_one_insert_and_nothing_when_nobody_listens,
        notifications::a_payment_without_an_owner_announces_nothing,
        notifications::unreadable_notifications_and_endpoints_are_reported_corrupt,
        notifications::endpoint_secrets_are_sealed_at_rest_and_sealed_anew_under_a_new_key,
    ],
}
