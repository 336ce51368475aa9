//! One request that has been read but whose response is not yet written.
//!
//! It is a future so that a connection can keep its pending responses in a
//! `FuturesOrdered`: deferred replies run concurrently, but complete *in request order*.
//! Each one holds a permit of the connection's in-flight semaphore until its response has
//! been encoded, which is what bounds the pipeline depth.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use kafka_protocol::messages::ResponseKind;
use tokio::sync::OwnedSemaphorePermit;

use crate::handler::{DeferredHeldResponse, DeferredResponse, HeldResponse, Reply};
use crate::memory_pool::Reservation;
use crate::request::ResponseSlot;

pub(crate) struct InFlight {
    slot: ResponseSlot,
    /// When the request was read, for the latency metric.
    received: Instant,
    /// `None` once the future has completed.
    state: Option<State>,
    permit: Option<OwnedSemaphorePermit>,
}

#[allow(clippy::large_enum_variant, reason = "same trade-off as Reply")]
enum State {
    Ready(ResponseKind),
    NoResponse,
    Deferred(DeferredResponse),
    Held(DeferredHeldResponse),
}

/// A finished request, in request order.
pub(crate) struct Completed {
    pub slot: ResponseSlot,
    pub received: Instant,
    /// `None`: nothing to write (acks=0).
    pub response: Option<ResponseKind>,
    /// Released once the response is in the write buffer.
    pub permit: OwnedSemaphorePermit,
    /// Pool memory the response's bytes count against; released once they are written.
    pub memory: Option<Reservation>,
}

impl InFlight {
    pub fn new(slot: ResponseSlot, reply: Reply, permit: OwnedSemaphorePermit) -> InFlight {
        let state = match reply {
            Reply::Ready(response) => State::Ready(response),
            Reply::NoResponse => State::NoResponse,
            Reply::Deferred(response) => State::Deferred(response),
            Reply::Held(response) => State::Held(response),
        };
        InFlight {
            slot,
            received: Instant::now(),
            state: Some(state),
            permit: Some(permit),
        }
    }
}

impl Future for InFlight {
    type Output = Completed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completed> {
        let this = self.get_mut();
        let mut memory = None;
        let response = match this.state.as_mut() {
            Some(State::Deferred(response)) => match response.as_mut().poll(cx) {
                Poll::Ready(response) => Some(response),
                Poll::Pending => return Poll::Pending,
            },
            Some(State::Held(response)) => match response.as_mut().poll(cx) {
                Poll::Ready(HeldResponse {
                    response,
                    memory: held,
                }) => {
                    memory = held;
                    Some(response)
                }
                Poll::Pending => return Poll::Pending,
            },
            Some(State::Ready(_)) => match this.state.take() {
                Some(State::Ready(response)) => Some(response),
                _ => None,
            },
            Some(State::NoResponse) => None,
            None => panic!("InFlight polled after completion"),
        };
        this.state = None;
        let permit = this
            .permit
            .take()
            .expect("permit is taken only on completion");
        Poll::Ready(Completed {
            slot: this.slot,
            received: this.received,
            response,
            permit,
            memory,
        })
    }
}
