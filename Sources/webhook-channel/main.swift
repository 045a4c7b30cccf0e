import Foundation
import WebhookChannel

exit(WebhookChannelMain.run(arguments: Array(CommandLine.arguments.dropFirst())))
