//! SQLite write turns: one writer at a time, in the order they came, except that a thread
//! marked `first` (the audit writer, which every audited lookup waits on, and the WAL
//! checkpointer, which keeps the file bounded) goes ahead of every ordinary writer waiting.
//! Without it the audit writer queued behind each part of an LA's upload in turn, and lookups
//! answered at a fifth of their quiet rate during a first daily upload (issue #31).

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Who holds the turn and who waits for it.
#[derive(Default)]
struct Queue {
    held: bool,
    /// `first` threads waiting: the turn goes to one of them before any ordinary writer.
    first_waiting: usize,
    /// Ordinary writers' tickets, in the order they came.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// The turns of one database file's writers.
pub(super) struct Turns {
    queue: Mutex<Queue>,
    changed: Condvar,
}

thread_local! {
    static FIRST: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread's write turns as coming before every ordinary writer's.
pub fn turns_first() {
    FIRST.with(|first| first.set(true));
}

impl Turns {
    pub(super) const fn new() -> Turns {
        Turns {
            queue: Mutex::new(Queue {
                held: false,
                first_waiting: 0,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Takes the turn if it comes within `wait`; false if not (nothing is held then).
    pub(super) fn take(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut queue = self.queue.lock();
        if FIRST.with(Cell::get) {
            queue.first_waiting += 1;
            while queue.held {
                if self.changed.wait_until(&mut queue, deadline).timed_out() && queue.held {
                    queue.first_waiting -= 1;
                    return false;
                }
            }
            queue.first_waiting -= 1;
        } else {
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.waiting.push_back(ticket);
            while queue.held || queue.first_waiting > 0 || queue.waiting.front() != Some(&ticket) {
                if self.changed.wait_until(&mut queue, deadline).timed_out() {
                    queue.waiting.retain(|t| *t != ticket);
                    drop(queue);
                    self.changed.notify_all();
                    return false;
                }
            }
            queue.waiting.pop_front();
        }
        queue.held = true;
        true
    }

    /// Gives the turn up, to the next writer.
    pub(super) fn give_up(&self) {
        self.queue.lock().held = false;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};

    const LONG: Duration = Duration::from_secs(5);

    /// Starts a writer thread that takes a turn, reports `name`, and gives the turn up.
    fn writer(
        turns: &Arc<Turns>,
        name: &'static str,
        first: bool,
        order: &mpsc::Sender<&'static str>,
    ) -> std::thread::JoinHandle<()> {
        let (turns, order) = (turns.clone(), order.clone());
        std::thread::spawn(move || {
            if first {
                turns_first();
            }
            assert!(turns.take(LONG));
            order.send(name).unwrap();
            turns.give_up();
        })
    }

    /// Waits until `n` threads wait for the turn.
    fn until_waiting(turns: &Turns, ordinary: usize, first: usize) {
        let start = Instant::now();
        loop {
            let q = turns.queue.lock();
            if q.waiting.len() == ordinary && q.first_waiting == first {
                return;
            }
            drop(q);
            assert!(start.elapsed() < LONG, "writers never queued");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn ordinary_writers_take_turns_in_the_order_they_came_and_a_first_one_goes_ahead_of_them() {
        let turns = Arc::new(Turns::new());
        assert!(
            turns.take(LONG),
            "the test holds the turn while the writers queue"
        );
        let (order, taken) = mpsc::channel();
        let a = writer(&turns, "upload part 1", false, &order);
        until_waiting(&turns, 1, 0);
        let b = writer(&turns, "upload part 2", false, &order);
        until_waiting(&turns, 2, 0);
        let audit = writer(&turns, "audit writer", true, &order);
        until_waiting(&turns, 2, 1);
        turns.give_up();
        for t in [a, b, audit] {
            t.join().unwrap();
        }
        let got: Vec<&str> = taken.try_iter().collect();
        assert_eq!(got, ["audit writer", "upload part 1", "upload part 2"]);
    }

    #[test]
    fn a_writer_whose_wait_ends_leaves_the_queue_and_the_next_one_is_not_held_up() {
        let turns = Arc::new(Turns::new());
        assert!(turns.take(LONG));
        let impatient = {
            let turns = turns.clone();
            std::thread::spawn(move || turns.take(Duration::from_millis(20)))
        };
        until_waiting(&turns, 1, 0);
        let (order, taken) = mpsc::channel();
        let patient = writer(&turns, "patient", false, &order);
        until_waiting(&turns, 2, 0);
        assert!(
            !impatient.join().unwrap(),
            "its wait ended with the turn still held"
        );
        turns.give_up();
        patient.join().unwrap();
        assert_eq!(taken.try_iter().collect::<Vec<_>>(), ["patient"]);
        assert!(turns.take(LONG), "nothing is left holding the turn");
    }
}
