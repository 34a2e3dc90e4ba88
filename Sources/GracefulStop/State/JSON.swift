/// A small, strict JSON reader and writer for the state files. Hand-written rather than
/// FoundationEssentials' coders so that a manifest of a million units streams into one byte
/// buffer (no String per name) and the .so stays free of Foundation.

/// Reads JSON from bytes, one value at a time; errors name the file and the byte offset.
struct JSONReader {
    let bytes: [UInt8]
    /// The file being read, for messages.
    let source: String
    private(set) var position = 0
    /// Objects and arrays open around the current position.
    private var depth = 0
    /// A manifest nests two levels; a newer writer's extra fields may nest a few more. The limit
    /// keeps a hostile or corrupt file from overflowing the stack (found by scripts/fuzz).
    static let maximumDepth = 64

    init(_ bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    func error(_ problem: String) -> GracefulStopError {
        GracefulStopError(.badState, "\(source) is not valid: \(problem) at byte \(position)")
    }

    private var atEnd: Bool { position >= bytes.count }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    private mutating func peek() throws -> UInt8 {
        skipWhitespace()
        if atEnd { throw error("unexpected end of file (truncated?)") }
        return bytes[position]
    }

    private mutating func expect(_ byte: UInt8) throws {
        if try peek() != byte { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    private mutating func enterContainer() throws {
        depth += 1
        if depth > JSONReader.maximumDepth { throw error("objects and arrays nested more than \(JSONReader.maximumDepth) deep") }
    }

    /// Reads an object, calling `body` with each key; `body` must read that key's value.
    mutating func readObject(_ body: (inout JSONReader, String) throws -> Void) throws {
        try enterContainer()
        defer { depth -= 1 }
        try expect(UInt8(ascii: "{"))
        if try peek() == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try body(&self, key)
            let next = try peek()
            position += 1
            if next == UInt8(ascii: "}") { return }
            if next != UInt8(ascii: ",") {
                position -= 1
                throw error("expected ',' or '}'")
            }
        }
    }

    /// Reads an array, calling `body` once per element; `body` must read the element.
    mutating func readArray(_ body: (inout JSONReader) throws -> Void) throws {
        try enterContainer()
        defer { depth -= 1 }
        try expect(UInt8(ascii: "["))
        if try peek() == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            try body(&self)
            let next = try peek()
            position += 1
            if next == UInt8(ascii: "]") { return }
            if next != UInt8(ascii: ",") {
                position -= 1
                throw error("expected ',' or ']'")
            }
        }
    }

    /// Reads a string and appends its decoded UTF-8 bytes to `output` (not validated as UTF-8:
    /// the caller decides what a valid name is).
    mutating func readString(appendingTo output: inout [UInt8]) throws {
        try expect(UInt8(ascii: "\""))
        while true {
            // Copy the run of plain bytes up to the next quote, backslash or control byte at once.
            let start = position
            position = bytes.withUnsafeBufferPointer { buffer in
                var end = start
                while end < buffer.count {
                    let byte = buffer[end]
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                    end += 1
                }
                return end
            }
            output.append(contentsOf: bytes[start..<position])
            if atEnd { throw error("unterminated string (truncated?)") }
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return
            case UInt8(ascii: "\\"):
                try readEscape(appendingTo: &output)
            default:
                position -= 1
                throw error("control character in a string")
            }
        }
    }

    private mutating func readEscape(appendingTo output: inout [UInt8]) throws {
        if atEnd { throw error("unterminated escape") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(byte)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                else { throw error("lone surrogate in \\u escape") }
                position += 2
                let low = try readHex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("lone surrogate in \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("lone surrogate in \\u escape")
            }
            output.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
        default:
            position -= 1
            throw error("unknown escape")
        }
    }

    private mutating func readHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("bad hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Reads a string that must be valid UTF-8.
    mutating func readString() throws -> String {
        // Most strings (every key) have no escape: made from the bytes in place, with no buffer
        // between (an events log of a million lines is millions of strings).
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "\"") {
            let start = position + 1
            let found: String?? = bytes.withUnsafeBufferPointer { buffer in
                var end = start
                while end < buffer.count {
                    let byte = buffer[end]
                    if byte == UInt8(ascii: "\"") {
                        return .some(String(validating: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
                    }
                    if byte == UInt8(ascii: "\\") || byte < 0x20 { return .none }
                    end += 1
                }
                return .none
            }
            if case .some(let text) = found {
                guard let text else { throw error("string is not valid UTF-8") }
                position = start + text.utf8.count + 1
                return text
            }
        }
        var raw: [UInt8] = []
        try readString(appendingTo: &raw)
        guard let text = String(validating: raw, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return text
    }

    /// Reads a number as written (digits, sign, fraction, exponent).
    private mutating func readNumberText() throws -> String {
        _ = try peek()
        let start = position
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                UInt8(ascii: "e"), UInt8(ascii: "E"):
                position += 1
            default:
                return String(decoding: bytes[start..<position], as: UTF8.self)
            }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    mutating func readInteger() throws -> Int {
        let start = position
        let text = try readNumberText()
        guard let value = Int(text) else {
            position = start
            throw error("expected an integer")
        }
        return value
    }

    mutating func readDouble() throws -> Double {
        let start = position
        let text = try readNumberText()
        guard !text.isEmpty, let value = Double(text), value.isFinite else {
            position = start
            throw error("expected a number")
        }
        return value
    }

    mutating func readBool() throws -> Bool {
        _ = try peek()
        if bytes[position...].starts(with: "true".utf8) {
            position += 4
            return true
        }
        if bytes[position...].starts(with: "false".utf8) {
            position += 5
            return false
        }
        throw error("expected true or false")
    }

    /// Consumes `null` and returns true, or returns false and consumes nothing.
    mutating func readNull() throws -> Bool {
        if try peek() == UInt8(ascii: "n") {
            guard bytes[position...].starts(with: "null".utf8) else { throw error("expected null") }
            position += 4
            return true
        }
        return false
    }

    /// Reads and discards one value of any kind (keys a newer writer may add).
    mutating func skipValue() throws {
        switch try peek() {
        case UInt8(ascii: "{"): try readObject { reader, _ in try reader.skipValue() }
        case UInt8(ascii: "["): try readArray { reader in try reader.skipValue() }
        case UInt8(ascii: "\""):
            var sink: [UInt8] = []
            try readString(appendingTo: &sink)
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            for word in ["true", "false", "null"] where bytes[position...].starts(with: word.utf8) {
                position += word.utf8.count
                return
            }
            throw error("unexpected word")
        default: _ = try readDouble()
        }
    }

    /// Fails unless only whitespace follows.
    mutating func expectEnd() throws {
        skipWhitespace()
        if !atEnd { throw error("unexpected text after the end of the JSON value") }
    }
}

/// Builds JSON text into bytes.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    /// A string literal: quotes, backslash and control characters escaped; other bytes as they are
    /// (the caller passes valid UTF-8).
    mutating func string<Bytes: Sequence<UInt8>>(_ value: Bytes) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
            case 0x0A: bytes.append(contentsOf: "\\n".utf8)
            case 0x09: bytes.append(contentsOf: "\\t".utf8)
            case 0x0D: bytes.append(contentsOf: "\\r".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func string(_ value: String) { string(value.utf8) }

    /// A number that reads back exactly (Swift's shortest round-trip form).
    mutating func number(_ value: Double) { raw(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)) }
}

/// A JSON value, for small records of mixed fields (the events log).
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields.first { $0.0 == key }?.1
    }

    public var string: String? { if case .string(let text) = self { return text } else { return nil } }
    public var number: Double? { if case .number(let value) = self { return value } else { return nil } }
    public var int: Int? { number.flatMap { $0 == $0.rounded() && abs($0) < 1e15 ? Int($0) : nil } }
    public var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }
}

extension JSONReader {
    mutating func readValue() throws -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of file (truncated?)") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            var fields: [(String, JSONValue)] = []
            try readObject { reader, key in fields.append((key, try reader.readValue())) }
            return .object(fields)
        case UInt8(ascii: "["):
            var items: [JSONValue] = []
            try readArray { reader in items.append(try reader.readValue()) }
            return .array(items)
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try readBool())
        case UInt8(ascii: "n"):
            _ = try readNull()
            return .null
        default: return .number(try readDouble())
        }
    }
}

extension JSONWriter {
    mutating func value(_ value: JSONValue) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): raw(flag ? "true" : "false")
        case .number(let number): self.number(number)
        case .string(let text): string(text)
        case .array(let items):
            raw("[")
            for (index, item) in items.enumerated() {
                if index > 0 { raw(", ") }
                self.value(item)
            }
            raw("]")
        case .object(let fields):
            raw("{")
            for (index, (key, item)) in fields.enumerated() {
                if index > 0 { raw(", ") }
                string(key)
                raw(": ")
                self.value(item)
            }
            raw("}")
        }
    }
}
