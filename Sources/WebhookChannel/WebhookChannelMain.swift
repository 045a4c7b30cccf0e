import Foundation

public enum WebhookChannelMain {
    public static func run(arguments: [String]) -> Int32 {
        return 0
    }
}
