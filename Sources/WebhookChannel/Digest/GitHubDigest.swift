import JSON

/// The fields of a GitHub event a person acts on (README "Digests"), where present. `event` is the
/// `X-GitHub-Event` header; an event not listed gets the repository, the sender and the
/// `html_url` of each top-level object.
enum GitHubDigest {
    /// Commits listed for a push; the count says how many there were.
    static let maxCommits = 5

    static func write(event: String?, payload: JSONValue, into writer: inout DigestWriter) {
        writer.field("Repository", payload["repository"]?["full_name"])
        writer.field("Sender", payload["sender"]?["login"])
        switch event {
        case "pull_request": pullRequest(payload, into: &writer)
        case "pull_request_review": pullRequestReview(payload, into: &writer)
        case "issues": issue(payload, into: &writer)
        case "issue_comment": issueComment(payload, into: &writer)
        case "push": push(payload, into: &writer)
        case "workflow_run": workflowRun(payload, into: &writer)
        case "workflow_job": workflowJob(payload, into: &writer)
        case "check_run", "check_suite": check(payload[event ?? ""], into: &writer)
        case "release": release(payload, into: &writer)
        case "deployment_status": deploymentStatus(payload, into: &writer)
        default: otherEvent(payload, into: &writer)
        }
    }

    private static func pullRequest(_ payload: JSONValue, into writer: inout DigestWriter) {
        let pr = payload["pull_request"]
        writer.field("Pull request", text: numbered(pr))
        let merged = pr?["merged"]?.boolValue == true ? "merged" : nil
        let draft = pr?["draft"]?.boolValue == true ? "draft" : nil
        writer.field("State", text: PayloadText.join([PayloadText.scalar(pr?["state"], limit: 40), merged, draft], separator: ", "))
        if let head = PayloadText.scalar(pr?["head"]?["ref"], limit: 120), let base = PayloadText.scalar(pr?["base"]?["ref"], limit: 120) {
            writer.line("Branch: \(head) → \(base)")
        }
        writer.field("Author", pr?["user"]?["login"])
        writer.field("URL", pr?["html_url"])
        writer.field("Body", pr?["body"])
    }

    private static func pullRequestReview(_ payload: JSONValue, into writer: inout DigestWriter) {
        let review = payload["review"], pr = payload["pull_request"]
        let state = PayloadText.scalar(review?["state"], limit: 40)
        let reviewer = PayloadText.scalar(review?["user"]?["login"], limit: 80).map { "by \($0)" }
        writer.field("Review", text: PayloadText.join([state, reviewer]))
        writer.field("Review body", review?["body"])
        writer.field("Pull request", text: numbered(pr))
        writer.field("URL", pr?["html_url"])
    }

    private static func issue(_ payload: JSONValue, into writer: inout DigestWriter) {
        let issue = payload["issue"]
        writer.field("Issue", text: numbered(issue))
        writer.field("State", issue?["state"], limit: 40)
        writer.field("Author", issue?["user"]?["login"])
        writer.field("URL", issue?["html_url"])
        writer.field("Body", issue?["body"])
    }

    private static func issueComment(_ payload: JSONValue, into writer: inout DigestWriter) {
        let issue = payload["issue"], comment = payload["comment"]
        // GitHub sends comments on pull requests as issue comments too.
        writer.field(issue?["pull_request"] == nil ? "Issue" : "Pull request", text: numbered(issue))
        writer.field("Comment by", comment?["user"]?["login"])
        writer.field("Comment", comment?["body"])
        writer.field("URL", comment?["html_url"])
    }

    private static func push(_ payload: JSONValue, into writer: inout DigestWriter) {
        writer.field("Ref", payload["ref"])
        writer.field("Compare", payload["compare"])
        guard let commits = payload["commits"]?.arrayValue else { return }
        writer.line("Commits: \(commits.count)")
        for commit in commits.prefix(maxCommits) {
            let sha = PayloadText.scalar(commit["id"], limit: 80).map { String($0.prefix(7)) } ?? "?"
            let author = PayloadText.scalar(commit["author"]?["username"], limit: 80)
                ?? PayloadText.scalar(commit["author"]?["name"], limit: 80) ?? "?"
            let message = commit["message"]?.stringValue.flatMap { $0.split(maxSplits: 1, whereSeparator: \.isNewline).first.map(String.init) }
            writer.line("- \(sha) \(author): \(message.map { PayloadText.clean($0) } ?? "")")
        }
    }

    private static func workflowRun(_ payload: JSONValue, into writer: inout DigestWriter) {
        let run = payload["workflow_run"]
        writer.field("Workflow", run?["name"])
        writer.field("Status", text: statusAndConclusion(run))
        writer.field("Branch", text: branchAndSHA(branch: run?["head_branch"], sha: run?["head_sha"]))
        writer.field("Triggered by", run?["event"], limit: 80)
        writer.field("Attempt", run?["run_attempt"])
        writer.field("URL", run?["html_url"])
    }

    private static func workflowJob(_ payload: JSONValue, into writer: inout DigestWriter) {
        let job = payload["workflow_job"]
        writer.field("Job", job?["name"])
        writer.field("Workflow", job?["workflow_name"])
        writer.field("Status", text: statusAndConclusion(job))
        writer.field("Branch", job?["head_branch"])
        writer.field("URL", job?["html_url"])
        let failed = (job?["steps"]?.arrayValue ?? []).filter { $0["conclusion"]?.stringValue == "failure" }
            .compactMap { PayloadText.scalar($0["name"], limit: 120) }
        if !failed.isEmpty { writer.line("Failed steps: " + failed.prefix(10).joined(separator: "; ")) }
    }

    /// `check_run` or `check_suite`: their shapes differ only in where the branch is kept.
    private static func check(_ check: JSONValue?, into writer: inout DigestWriter) {
        writer.field("Check", check?["name"])
        writer.field("App", check?["app"]?["name"])
        writer.field("Status", text: statusAndConclusion(check))
        writer.field("Branch", text: branchAndSHA(branch: check?["head_branch"] ?? check?["check_suite"]?["head_branch"],
                                                  sha: check?["head_sha"]))
        writer.field("URL", check?["html_url"])
        writer.field("Details", check?["details_url"])
    }

    private static func release(_ payload: JSONValue, into writer: inout DigestWriter) {
        let release = payload["release"]
        writer.field("Tag", release?["tag_name"])
        writer.field("Name", release?["name"])
        writer.field("Prerelease", release?["prerelease"])
        writer.field("URL", release?["html_url"])
        writer.field("Body", release?["body"])
    }

    private static func deploymentStatus(_ payload: JSONValue, into writer: inout DigestWriter) {
        let status = payload["deployment_status"]
        writer.field("State", status?["state"], limit: 40)
        writer.field("Environment", status?["environment"] ?? payload["deployment"]?["environment"])
        writer.field("Target URL", status?["target_url"])
        writer.field("Log URL", status?["log_url"])
        writer.field("Creator", status?["creator"]?["login"])
    }

    private static func otherEvent(_ payload: JSONValue, into writer: inout DigestWriter) {
        for member in payload.objectValue ?? JSONObject() {
            guard !writer.isFull else { return }
            guard case .object(let object) = member.value, object["html_url"] != nil else { continue }
            writer.field(PayloadText.clean(member.key, limit: 60) + " URL", object["html_url"])
        }
    }

    /// `#12 Title` for a pull request or an issue.
    private static func numbered(_ item: JSONValue?) -> String? {
        let number = item?["number"]?.intValue.map { "#\($0)" }
        let title = PayloadText.scalar(item?["title"])
        return PayloadText.join([number, title])
    }

    private static func statusAndConclusion(_ item: JSONValue?) -> String? {
        let status = PayloadText.scalar(item?["status"], limit: 40)
        let conclusion = PayloadText.scalar(item?["conclusion"], limit: 40).map { "conclusion \($0)" }
        return PayloadText.join([status, conclusion], separator: ", ")
    }

    private static func branchAndSHA(branch: JSONValue?, sha: JSONValue?) -> String? {
        let branch = PayloadText.scalar(branch, limit: 120)
        let short = PayloadText.scalar(sha, limit: 80).map { String($0.prefix(7)) }
        return PayloadText.join([branch, short.map { "@ \($0)" }])
    }
}
