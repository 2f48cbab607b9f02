//! One computation per missing entry in a process: the other callers wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, LazyLock, Mutex};

use crate::shell::runner::Runner;
use crate::sync::lock;

/// One cache entry of one server, for the in-process single flight.
pub(super) type FlightId = (String, String, Vec<u8>);

pub(super) static FLIGHTS: LazyLock<Mutex<HashMap<FlightId, Arc<Flight>>>> =
    LazyLock::new(Default::default);

/// A computation of one missing entry in this process, that other callers wait for.
#[derive(Default)]
pub(super) struct Flight {
    pub(super) done: Mutex<bool>,
    pub(super) landed: Condvar,
    pub(super) notify: tokio::sync::Notify,
}

pub(super) enum Joined {
    /// Compute; the flight ends when this is dropped (however the computation ends).
    Lead(Leading),
    /// Somebody else computes: wait, then look again.
    Follow(Arc<Flight>),
}

pub(super) struct Leading {
    pub(super) id: Option<FlightId>,
    pub(super) flight: Arc<Flight>,
}

impl Drop for Leading {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            lock(&FLIGHTS).remove(&id);
        }
        *lock(&self.flight.done) = true;
        self.flight.landed.notify_all();
        self.flight.notify.notify_waiters();
    }
}

impl Flight {
    pub(super) fn join(id: FlightId) -> Joined {
        let mut flights = lock(&FLIGHTS);
        if let Some(flight) = flights.get(&id) {
            return Joined::Follow(Arc::clone(flight));
        }
        let flight = Arc::new(Flight::default());
        flights.insert(id.clone(), Arc::clone(&flight));
        Joined::Lead(Leading {
            id: Some(id),
            flight,
        })
    }

    pub(super) fn is_done(&self) -> bool {
        *lock(&self.done)
    }

    /// Until the leader is done: blocking the thread for a blocking runner, else awaiting.
    pub(super) async fn wait<R: Runner>(&self) {
        if R::BLOCKING {
            let mut done = lock(&self.done);
            while !*done {
                done = self.landed.wait(done).unwrap_or_else(|p| p.into_inner());
            }
            return;
        }
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.is_done() {
            notified.await;
        }
    }
}
