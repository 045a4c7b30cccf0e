import JSON

/// The fields of a Stripe event a person acts on (README "Digests"): what object it is about, how much,
/// its status and customer, why it failed, and what changed.
enum StripeDigest {
    /// Currencies Stripe counts in whole units (its "zero-decimal currencies").
    static let zeroDecimalCurrencies: Set<String> = [
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    ]
    /// Currencies Stripe counts in thousandths.
    static let threeDecimalCurrencies: Set<String> = ["BHD", "JOD", "KWD", "OMR", "TND"]

    static func write(payload: JSONValue, into writer: inout DigestWriter) {
        let object = payload["data"]?["object"]
        writer.field("Object", text: PayloadText.join([PayloadText.scalar(object?["object"], limit: 80),
                                                       PayloadText.scalar(object?["id"], limit: 120)]))
        let amounts = [("amount", "Amount"), ("amount_due", "Amount due"), ("amount_total", "Amount total")]
        if let (key, label) = amounts.first(where: { object?[$0.0]?.intValue != nil }), let minor = object?[key]?.intValue {
            writer.field(label, text: formatAmount(minor, currency: PayloadText.scalar(object?["currency"], limit: 8)))
        }
        writer.field("Status", object?["status"], limit: 80)
        writer.field("Customer", object?["customer"], limit: 120)
        writer.field("Description", object?["description"])
        writer.field("Failure", text: PayloadText.join([PayloadText.scalar(object?["failure_code"], limit: 80),
                                                        PayloadText.scalar(object?["failure_message"])], separator: ": "))
        if let changed = payload["data"]?["previous_attributes"]?.objectValue, !changed.isEmpty {
            writer.line("Changed: " + changed.keys.prefix(30).map { PayloadText.clean($0, limit: 60) }.joined(separator: ", "))
        }
        writer.field("Livemode", payload["livemode"] ?? object?["livemode"])
    }

    /// `2000`, `usd` → `20.00 USD`; `500`, `jpy` → `500 JPY`. Without a currency, the number
    /// as Stripe sent it (in the currency's smallest unit).
    static func formatAmount(_ minor: Int64, currency: String?) -> String {
        guard let code = currency?.uppercased() else { return String(minor) }
        let decimals = zeroDecimalCurrencies.contains(code) ? 0 : threeDecimalCurrencies.contains(code) ? 3 : 2
        var digits = String(minor.magnitude)
        if decimals > 0 {
            if digits.count <= decimals { digits = String(repeating: "0", count: decimals - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -decimals))
        }
        return (minor < 0 ? "-" : "") + digits + " " + code
    }
}
