//! The outbox dispatcher as a background task, and two dispatchers sharing one outbox.
#![cfg(all(feature = "memory", feature = "service"))]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use afiliado::MemberId;
use afiliado::core::{Locale, Notice, NoticeKind};
use afiliado::memory::{MemoryMailer, MemoryStore};
use afiliado::notices::LinkBase;
use afiliado::ports::{AccountStore, ManualClock, NewMessage, OutboxStatus};
use afiliado::seal::SealKey;
use afiliado::service::OutboxDispatcher;
use rand::SeedableRng;
use time::macros::datetime;

const T0: time::OffsetDateTime = datetime!(2026-11-22 19:00 -5);

async fn queue(store: &MemoryStore, n: usize) {
    let member: MemberId = "1710034065".parse().unwrap();
    let msgs = (0..n)
        .map(|i| {
            let notice = Notice::new(
                "ana@example.ec".parse().unwrap(),
                Locale::EsEc,
                NoticeKind::PasswordChanged,
            );
            NewMessage::new(format!("m{i}"), member.clone(), notice, Vec::new(), T0)
        })
        .collect();
    let mut record = afiliado::core::AccountRecord::new(member);
    record.version = 0;
    store.commit(&record, 0, msgs, vec![]).await.unwrap();
}

fn dispatcher(store: Arc<MemoryStore>, mailer: Arc<MemoryMailer>) -> Arc<OutboxDispatcher> {
    let key = SealKey::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
    Arc::new(OutboxDispatcher::new(
        store,
        mailer,
        key,
        LinkBase::new("https://afiliados.example.ec").unwrap(),
        Arc::new(ManualClock::new(T0)),
    ))
}

async fn wait_for(mailer: &MemoryMailer, n: usize) {
    for _ in 0..500 {
        if mailer.sent().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {n} mails were delivered", mailer.sent().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_dispatcher_delivers_and_shuts_down() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    queue(&store, 25).await;
    let handle = dispatcher(store.clone(), mailer.clone()).spawn(10, Duration::from_millis(5));
    wait_for(&mailer, 25).await;
    handle.shutdown().await;
    assert_eq!(mailer.sent().len(), 25);
    assert!(
        store
            .outbox()
            .iter()
            .all(|m| matches!(m.status, OutboxStatus::Sent { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_outbox_send_each_message_once() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    queue(&store, 200).await;
    let a = dispatcher(store.clone(), mailer.clone()).spawn(7, Duration::from_millis(2));
    let b = dispatcher(store.clone(), mailer.clone()).spawn(7, Duration::from_millis(2));
    wait_for(&mailer, 200).await;
    a.shutdown().await;
    b.shutdown().await;
    let mut ids: Vec<_> = mailer.sent().into_iter().map(|m| m.message_id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        (before, ids.len()),
        (200, 200),
        "every message sent exactly once"
    );
}
