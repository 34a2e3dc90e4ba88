import Glibc

/// A value guarded by a pthread mutex, with `Synchronization.Mutex`'s `withLock` shape.
///
/// Not `Mutex` itself: on Linux it waits on a futex inside the (uninstrumented) standard library,
/// which ThreadSanitizer cannot see, so every value it guards shared between threads reads as a
/// data race under `swift test --sanitize=thread`. pthread_mutex_lock is intercepted, so the
/// sanitizer sees these critical sections for what they are; uncontended, the cost is the same.
final class Locked<Value>: @unchecked Sendable {
    /// Allocated, not stored inline: a pthread mutex must never move.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
