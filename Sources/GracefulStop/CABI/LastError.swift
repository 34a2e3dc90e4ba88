import Glibc

/// The message of the last failed C-ABI call, per thread (`gracefulstop_last_error()`). A
/// pthread key rather than a global so that two threads' errors never overwrite each other.
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    static func set(_ message: String) {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, strdup(message))
        free(previous)
    }

    static var current: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }
}

/// Runs one C-ABI call: any error becomes its status code plus the thread's last-error message.
@inline(__always)
func cStatus(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch let error as GracefulStopError {
        LastError.set(error.message)
        return error.code.rawValue
    } catch {
        LastError.set("internal error: \(error)")
        return GracefulStopError.Code.internal.rawValue
    }
}
