import WebhookChannel

WebhookChannelMain.main(arguments: Array(CommandLine.arguments.dropFirst()))
