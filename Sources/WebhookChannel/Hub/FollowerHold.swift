/// Which event-log generations still hold events a follower has not passed on to its session.
///
/// The hub may not rotate those away: a hub that dies takes what it queued for the follower
/// with it, and a follower drops what it read and had not passed on yet (its session was not
/// reading). Both are read again from the log, by the new hub or by the follower that becomes
/// it (`FollowerCatchUp`, `ChannelState.openLogs`), so they must still be there.
///
/// The follower says how many events it has passed on so far (`passed` frames on `hub.sock`);
/// the hub counts, per run of events logged in the same generation, how many it had sent
/// through that run's last one. A catch-up goes ahead of everything shared, so it is counted
/// first once its size is known.
struct FollowerHold {
    /// Runs of shared events, oldest first: their log generation and how many events had been
    /// shared through the run's last one.
    private var runs: [(generation: Int, through: Int)] = []
    private var shared = 0
    /// The oldest generation a catch-up being sent may come from, until the follower passed it on.
    private var catchUpGeneration: Int?
    /// How many events the catch-up is (nil while it is still being read from the log).
    private var catchUpEvents: Int?
    private var passed = 0

    /// One more event shared with the follower, whose line is in log generation `generation`.
    mutating func share(loggedIn generation: Int) {
        shared += 1
        if let last = runs.indices.last, runs[last].generation == generation {
            runs[last].through = shared
        } else {
            runs.append((generation, shared))
        }
    }

    /// A catch-up read from the log generations from `generation` on goes out first.
    mutating func catchUpStarts(from generation: Int) {
        catchUpGeneration = generation
        catchUpEvents = nil
    }

    /// The catch-up was `events` events; the follower passes those on before any shared one.
    mutating func catchUpSent(events: Int) {
        catchUpEvents = events
        settle()
    }

    /// The follower passed on `count` events since it attached (catch-up included).
    mutating func passedOn(_ count: Int) {
        passed = max(passed, count)
        settle()
    }

    private mutating func settle() {
        // While the catch-up is read, nothing shared has been sent yet.
        guard catchUpGeneration == nil || catchUpEvents != nil else { return }
        let ahead = catchUpEvents ?? 0
        if passed >= ahead { catchUpGeneration = nil }
        let sharedPassed = passed - ahead
        let done = runs.prefix { $0.through <= sharedPassed }.count
        if done > 0 { runs.removeFirst(done) }
    }

    /// The oldest generation with an event not passed on yet; nil when the follower is caught up.
    var oldestGeneration: Int? {
        catchUpGeneration ?? runs.first?.generation
    }

    /// Forgets everything (the link is gone).
    mutating func release() {
        self = FollowerHold()
    }
}
