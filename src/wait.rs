//! The two waits every loop shares: for work, within a deadline; and for a
//! condition that an [`Event`] announces changes of.
//!
//! Both are small, but each has one way to get it wrong: a deadline that
//! leaves the work running, or a notification that falls between looking
//! at the condition and listening for its change. So they are written once.
//!
//! Must not: sleep the thread, or know what is being waited for.

use std::future::Future;
use std::time::Duration;

use async_io::Timer;
use event_listener::Event;
use futures_lite::future;

/// `Some(output)` if `work` finishes within `deadline`; `None` otherwise,
/// and `work` is dropped, which cancels it.
pub(crate) async fn within<T>(deadline: Duration, work: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        Timer::after(deadline).await;
        None
    })
    .await
}

/// Waits until `ready()` holds, looking again each time `changed` is
/// notified. Listens before the second look, so a change between the look
/// and the listening still wakes it.
pub(crate) async fn until(changed: &Event, mut ready: impl FnMut() -> bool) {
    loop {
        if ready() {
            return;
        }
        let listener = changed.listen();
        if ready() {
            return;
        }
        listener.await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn within_cancels_work_that_outlives_its_deadline() {
        let dropped = Cell::new(false);
        struct Flag<'a>(&'a Cell<bool>);
        impl Drop for Flag<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let slow = async {
            let _flag = Flag(&dropped);
            future::pending::<()>().await;
        };
        assert_eq!(
            async_io::block_on(within(Duration::from_millis(10), slow)),
            None
        );
        assert!(dropped.get(), "the work was dropped at the deadline");
        assert_eq!(
            async_io::block_on(within(Duration::from_secs(5), async { 7 })),
            Some(7)
        );
    }

    #[test]
    fn until_sees_a_change_made_between_look_and_listen() {
        let changed = Event::new();
        let value = Cell::new(0);
        let looks = Cell::new(0);
        // The first look fails and, as it were from another task, changes
        // the value and notifies before anyone listens: the second look
        // must catch it, or `until` would wait forever.
        let ready = || {
            looks.set(looks.get() + 1);
            if looks.get() == 1 {
                value.set(1);
                changed.notify(usize::MAX);
                return false;
            }
            value.get() == 1
        };
        let done = within(Duration::from_secs(5), until(&changed, ready));
        assert_eq!(async_io::block_on(done), Some(()));
        assert_eq!(looks.get(), 2);
    }

    #[test]
    fn until_waits_for_a_notification_then_looks_again() {
        let changed = Event::new();
        let value = Cell::new(false);
        let waiter = until(&changed, || value.get());
        let setter = async {
            Timer::after(Duration::from_millis(20)).await;
            value.set(true);
            changed.notify(usize::MAX);
            future::pending::<()>().await;
        };
        let raced = within(Duration::from_secs(5), future::or(waiter, setter));
        assert_eq!(async_io::block_on(raced), Some(()));
    }
}
