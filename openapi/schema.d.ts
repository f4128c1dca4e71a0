export interface paths {
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description Answers while the process serves requests; no authentication.
         */
        get: operations["health"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/grants": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List grants, newest first
         * @description Filters combine (AND). Follow nextCursor for further pages; it is null on the last page.
         */
        get: operations["listGrants"];
        put?: never;
        /**
         * Request temporary access
         * @description Gives one Identity Store user one permission set on one AWS account (an account grant: accountId and permissionSet), or membership of one Identity Store group (a group grant: groupName, which a policy rule must list in grantableGroups), for a bounded time, if the eligibility policy allows it. Any other mix of accountId, permissionSet and groupName is answered 400 VALIDATION_FAILED. Answers 201 once the account assignment is in place, or 202 while Identity Center is still provisioning it (poll GET /grants/{id}). It answers within the request deadline (25 s by default) whatever AWS does: 202 once the grant is recorded, 503 with Retry-After before. Denials are audited and answered 403 POLICY_DENIED with the failed condition. With startsAt (a later start) it answers 201 with status scheduled: nothing is created in Identity Center until the first sweep after that time, which asks the policy again and then provisions the grant (or records it denied). Send an Idempotency-Key (e.g. grant- and the change’s sys_id) to make retries safe: the same key and body replay the first answer, and a retry after a 503 resumes the grant the failed attempt recorded instead of making another. With dryRun: true it answers 200 with the verdict (DryRunResult) a real request would get, and records and creates nothing.
         */
        post: operations["createGrant"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/grants/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get one grant
         * @description The grant’s current state; poll it after a 202 until status is active (or failed).
         */
        get: operations["getGrant"];
        put?: never;
        post?: never;
        /**
         * End a grant early, or cancel a scheduled one
         * @description Removes the access now. Answers 200 with status revoked, or 202 with status revoking while Identity Center removes the assignment (or when the request deadline came first; the sweep finishes it). A permanent assignment that existed before the grant, or another active grant of the same access, keeps the access in place. A scheduled grant is cancelled (200, status cancelled) without any call to Identity Center. Ending a grant that has already ended changes nothing and answers its final state.
         */
        delete: operations["revokeGrant"];
        options?: never;
        head?: never;
        /**
         * Extend or shorten a grant
         * @description Moves the end (expiresAt) of a scheduled, provisioning or active grant; its status is unchanged, and the sweep ends it at the new end. An extension is decided as a new request for the whole new duration would be: over the service maximum is 400, refused by the eligibility policy (with the user’s groups as they are now) is 403 POLICY_DENIED, audited. Shortening is always allowed. An end in the past or before startsAt is 400; a grant that is ending or has ended is 409 GRANT_ALREADY_ENDED. Send application/merge-patch+json or application/json. Needs grants:write, as requesting does. Audited as grant.extended or grant.shortened; an Idempotency-Key makes retries safe.
         */
        patch: operations["changeGrantEnd"];
        trace?: never;
    };
    "/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Audit events, newest first
         * @description Every decision: requested, denied, activated, failed, revoke requested, revoked, expired, drift. Filters combine (AND); from/to bound the time inclusively. With Accept: text/csv or application/x-ndjson the matching events are streamed as an export (newest first; up to limit, or all).
         */
        get: operations["listAuditEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/audit/verify": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Verify the tamper-evident chain
         * @description Recomputes every event’s hash in chain order. ok: false names the first event that was changed, or that follows deleted events; missing events at the end are detected against the chain head. With an anchor bucket (JIT_AUDIT_ANCHOR_BUCKET), every sweep in which the chain moved records its head in S3 under Object Lock, and the log is also checked against those anchors: a log cut short before an anchor, or rewritten at or before one, fails and names the anchor, even when the chain head was moved back to match. anchored: false means only the chain vouched for itself.
         */
        get: operations["verifyAuditChain"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/revocations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Revoke every expired grant (the scheduled sweep)
         * @description Called every minute by the scheduler. Removes the access of every grant whose expiry has passed, and finishes grants left provisioning or revoking by an earlier failure. Grants not finished in this run are counted as remaining and picked up by the next.
         */
        post: operations["runRevocationSweep"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/policy": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The eligibility policy in force, and its version
         * @description The policy document the service loaded at start, and its version (a content hash). Every audited decision names the version and the rule that allowed the request or came closest, so an auditor can tell which policy decided. Changes only with a restart on another policy file.
         */
        get: operations["getPolicy"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/eligibility": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * What a user may request
         * @description Every policy rule whose users or groups include the user (groups as the directory says now), each with its permission sets, its accounts (organizational units expanded to the active accounts nested below them, filtered by the rule’s account tags; at most limit per rule, with truncated and a nextCursor when there may be more: asked again with that cursor, the answer holds only that rule, its next accounts; a rule naming * says anyAccount instead of listing), its maximum duration and lead time, and its ticket pattern. A catalog item can offer exactly these choices. What is listed may still be refused for a condition this cannot know in advance (the ticket). Unknown user: 422 USER_NOT_FOUND. A cursor this service did not issue, or issued under another policy version: 400 INVALID_CURSOR. AWS Organizations or the directory unavailable: 503.
         */
        get: operations["getEligibility"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * Problem
         * @description RFC 9457 problem details (application/problem+json)
         * @example {
         *       "type": "urn:jit-access:problem:policy-denied",
         *       "title": "Forbidden",
         *       "status": 403,
         *       "detail": "Rule 'oncall-incident-access' allows at most 240 minutes for AdministratorAccess on 111111111111; 600 were requested",
         *       "instance": "/grants",
         *       "code": "POLICY_DENIED",
         *       "requestId": "7f1c2e9a-4b1d-4f0e-9d7c-2a3b4c5d6e7f",
         *       "failedCondition": "duration"
         *     }
         */
        Problem: {
            /** @description URI identifying the problem type */
            type: string;
            title: string;
            status: number;
            detail: string;
            /** @description The request path */
            instance: string;
            /**
             * @description Stable machine-readable error code
             * @example VALIDATION_FAILED
             */
            code: string;
            /** @description Correlates with service logs and the audit log */
            requestId: string;
            /** @description Every invalid, missing or unknown field (VALIDATION_FAILED), at most 20 of them */
            errors?: {
                /** @description body, querystring, params or headers */
                location: string;
                /** @description JSON pointer to the field; an unknown or missing field is pointed at by its own name */
                path: string;
                /** @example unknown field 'username' */
                message: string;
            }[];
            /** @description For POLICY_DENIED: principal, account, permissionSet, duration, leadTime or ticket */
            failedCondition?: string;
            /** @description The grant the problem concerns, when one was recorded */
            grantId?: string;
            /** @description For GRANT_ALREADY_ENDED: the status the grant is in */
            grantStatus?: string;
        };
        /**
         * Grant
         * @example {
         *       "id": "019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f",
         *       "status": "active",
         *       "userName": "alice",
         *       "userId": "94482488-3041-7026-18f5-1a2b3c4d5e6f",
         *       "accountId": "111111111111",
         *       "permissionSet": "AdministratorAccess",
         *       "permissionSetArn": "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222",
         *       "groupName": null,
         *       "groupId": null,
         *       "ticketId": "CHG0031337",
         *       "justification": "Fix failing deployment",
         *       "requestedBy": "servicenow-workflow",
         *       "createdAt": "2026-11-25T10:00:00.000Z",
         *       "startsAt": "2026-11-25T10:00:00.000Z",
         *       "expiresAt": "2026-11-25T11:00:00.000Z",
         *       "accessEndsBy": "2026-11-25T12:00:00.000Z",
         *       "endedAt": null,
         *       "endedBy": null,
         *       "endReason": null,
         *       "coveredBy": "jit",
         *       "failureReason": null,
         *       "sessionsCutAt": null
         *     }
         */
        Grant: {
            /** @description Grant id (UUIDv7, sorts by creation time) */
            id: string;
            /**
             * @description provisioning → active → revoking → expired | revoked; or failed. A grant with a later start is scheduled first, then starts (→ provisioning), is cancelled (DELETE before its start), or is denied at its start (the policy, asked again, refused it).
             * @enum {string}
             */
            status: "scheduled" | "provisioning" | "active" | "revoking" | "expired" | "revoked" | "cancelled" | "denied" | "failed";
            userName: string;
            /** @description Identity Store user id */
            userId: string;
            /** @description An account grant’s account; null for a group grant */
            accountId: string | null;
            /** @description An account grant’s permission set; null for a group grant */
            permissionSet: string | null;
            /** @description null for a group grant */
            permissionSetArn: string | null;
            /** @description A group grant’s Identity Store group (display name); null for an account grant */
            groupName: string | null;
            /** @description A group grant’s Identity Store group id; null for an account grant */
            groupId: string | null;
            ticketId: string;
            justification: string | null;
            /** @description The JWT subject that requested the grant */
            requestedBy: string;
            /**
             * Format: date-time
             * @description ISO 8601 timestamp (UTC)
             */
            createdAt: string;
            /**
             * Format: date-time
             * @description When the access starts: the requested start of a scheduled grant, otherwise when it was requested
             */
            startsAt: string;
            /**
             * Format: date-time
             * @description When the access ends; PATCH /grants/{id} moves it
             */
            expiresAt: string;
            /**
             * Format: date-time
             * @description For a group grant, expiresAt. For an account grant, expiresAt plus the permission set session duration: a role session taken just before expiry lasts until then; once sessions are cut (sessionsCutAt), the cut plus the 5 minutes a service control policy takes to apply
             */
            accessEndsBy: string;
            /**
             * Format: date-time
             * @description ISO 8601 timestamp (UTC)
             */
            endedAt: string | null;
            /** @description Who ended it: a JWT subject, or system:sweep on expiry */
            endedBy: string | null;
            /** @enum {string|null} */
            endReason: "expired" | "revoked" | null;
            /**
             * @description 'pre-existing': a permanent assignment already gave this access and is left in place
             * @enum {string|null}
             */
            coveredBy: "jit" | "pre-existing" | null;
            /** @description Why the grant failed, or why the policy denied a scheduled grant at its start */
            failureReason: string | null;
            /**
             * Format: date-time
             * @description With JIT_SESSION_CUTOFF=scp, when the access ended: role sessions issued before it are denied by a service control policy. Null until then, and when no cut was made (access kept by another grant or a permanent assignment, or the policies were full: see the audit event grant.cutoff_failed)
             */
            sessionsCutAt: string | null;
        };
        /**
         * AuditEvent
         * @example {
         *       "id": "019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e60",
         *       "at": "2026-11-25T10:00:00.120Z",
         *       "action": "grant.activated",
         *       "actor": "servicenow-workflow",
         *       "grantId": "019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f",
         *       "userName": "alice",
         *       "accountId": "111111111111",
         *       "permissionSet": "AdministratorAccess",
         *       "groupName": null,
         *       "ticketId": "CHG0031337",
         *       "detail": "account assignment in place",
         *       "requestId": "7f1c2e9a-4b1d-4f0e-9d7c-2a3b4c5d6e7f",
         *       "correlationId": "RITM0010042",
         *       "seq": 42,
         *       "prevHash": "5d41402abc4b2a76b9719d911017c592ae2ef3b1a4b2f7c1d0e9f8a7b6c5d4e3",
         *       "hash": "9b74c9897bac770ffc029102a200c5de1f3f0a2b4c6d8e0f1a3b5c7d9e1f2a3b"
         *     }
         */
        AuditEvent: {
            /** @description Event id (UUIDv7, sorts by time) */
            id: string;
            /**
             * Format: date-time
             * @description ISO 8601 timestamp (UTC)
             */
            at: string;
            /** @enum {string} */
            action: "grant.requested" | "grant.scheduled" | "grant.start_requested" | "grant.cancelled" | "grant.extended" | "grant.shortened" | "grant.denied" | "grant.activated" | "grant.failed" | "grant.revoke_requested" | "grant.revoked" | "grant.expired" | "grant.drift_detected" | "grant.delivery_failed" | "grant.sessions_cut" | "grant.cutoff_failed";
            /** @description JWT subject, or system:sweep */
            actor: string;
            grantId: string | null;
            userName: string;
            /** @description null on a group grant’s events */
            accountId: string | null;
            /** @description null on a group grant’s events */
            permissionSet: string | null;
            /** @description A group grant’s Identity Store group; null on an account grant’s events (hashed only when set) */
            groupName: string | null;
            ticketId: string;
            detail: string;
            /** @description This service’s id of the HTTP request that caused it (API Gateway’s behind API Gateway), as in the service logs; null for the scheduled sweep */
            requestId: string | null;
            /** @description The caller’s own x-request-id for that request, when it sent a valid one (1–128 of letters, digits and _.:=+/-). The caller’s label, not this service’s: it is not part of the hashed content, which requestId is. Null on events written before it was recorded */
            correlationId: string | null;
            /** @description Position in the tamper-evident chain (1, 2, 3… without gaps) */
            seq: number;
            /** @description hash of the event before this one in the chain */
            prevHash: string;
            /** @description SHA-256 (hex) over this event’s canonical content, including seq and prevHash */
            hash: string;
        };
        /** SweepSummary */
        SweepSummary: {
            /** @description Grants whose access this run ended */
            revoked: number;
            /** @description Grants whose provisioning this run confirmed */
            activated: number;
            /** @description Scheduled grants the policy refused at their start (the user is no longer eligible) */
            denied: number;
            /** @description Grants this run could not finish; retried next run */
            failed: number;
            /** @description Grants still due (Identity Center busy, or time budget spent) */
            remaining: number;
            /** @description Assignments checked against Identity Center (each is checked every few minutes) */
            checked: number;
            /** @description Grants ended because their assignment was removed outside jit-access */
            drifted: number;
            /** @description Messages (SNS lifecycle, ticket work notes) still waiting for delivery: their receiver is failing; retried with backoff */
            undelivered: number;
        };
        /** AuditVerification */
        AuditVerification: {
            ok: boolean;
            /** @description Events verified */
            events: number;
            /** @description Hash of the last verified event: anchor it outside this system (e.g. in the ticket) to detect later truncation */
            head?: string;
            firstSeq?: number | null;
            /** @description The first event that does not match (null when events at the end are missing) */
            firstBadEventId?: string | null;
            firstBadSeq?: number;
            /** @description What does not match; a log cut short or rewritten before an anchor names that anchor */
            reason?: string;
            /** @description The log was compared with at least one head anchored in write-once storage (JIT_AUDIT_ANCHOR_BUCKET). false when no anchor store is set, or no anchor falls in the range: then only the chain vouches for itself */
            anchored: boolean;
            /** @description The newest anchor the log was compared with (on failure, possibly the one it contradicts) */
            anchor?: {
                /** @description The anchored event: it and every event before it are covered by its hash */
                seq: number;
                hash: string;
                /**
                 * Format: date-time
                 * @description When the anchor store received it
                 */
                at: string;
                /** @description Where it is: the S3 object key */
                name: string;
            };
        };
        /** PolicyRule */
        PolicyRule: {
            name: string;
            /** @description Identity Store user names */
            users?: string[];
            /** @description Identity Store group display names (matched by id, resolved at start) */
            groups?: string[];
            /** @description Account ids, * (any), organizational units (ou-…, every account nested below) or the root (r-…); absent in a rule of grantable groups only */
            accounts?: string[];
            /** @description Tags every allowed account must carry (AWS Organizations) */
            accountTags?: {
                [key: string]: string;
            };
            /** @description Permission set names, or *; absent in a rule of grantable groups only */
            permissionSets?: string[];
            /** @description Identity Store groups (display names) a group grant under this rule may add the user to */
            grantableGroups?: string[];
            maxDurationMinutes: number;
            /** @description How far ahead a grant may be scheduled; absent: the service maximum */
            maxLeadDays?: number;
            /** @description RE2 pattern the whole ticket id must match */
            ticketPattern?: string;
        };
        /**
         * PolicyView
         * @example {
         *       "version": "3f2a9c1b7d4e",
         *       "document": {
         *         "rules": [
         *           {
         *             "name": "oncall-incident-access",
         *             "groups": [
         *               "oncall"
         *             ],
         *             "accounts": [
         *               "111111111111"
         *             ],
         *             "permissionSets": [
         *               "AdministratorAccess"
         *             ],
         *             "maxDurationMinutes": 240,
         *             "ticketPattern": "(CHG|INC)[0-9]{7}"
         *           }
         *         ]
         *       }
         *     }
         */
        PolicyView: {
            /**
             * @description The policy’s identity: the first 12 hex digits of the SHA-256 of the document as canonical JSON (keys sorted). Every audited decision names it.
             * @example 3f2a9c1b7d4e
             */
            version: string;
            /** @description The eligibility policy the service decides with, as loaded at start */
            document: {
                rules: components["schemas"]["PolicyRule"][];
            };
        };
        /**
         * Eligibility
         * @example {
         *       "userName": "alice",
         *       "policyVersion": "3f2a9c1b7d4e",
         *       "rules": [
         *         {
         *           "rule": "oncall-incident-access",
         *           "permissionSets": [
         *             "AdministratorAccess",
         *             "ReadOnlyAccess"
         *           ],
         *           "grantableGroups": [
         *             "prod-breakglass"
         *           ],
         *           "accountScope": [
         *             "111111111111",
         *             "ou-ab12-cdef3456"
         *           ],
         *           "accountTags": null,
         *           "anyAccount": false,
         *           "accounts": [
         *             {
         *               "id": "111111111111",
         *               "name": "production"
         *             },
         *             {
         *               "id": "444444444444",
         *               "name": "payments-prod"
         *             }
         *           ],
         *           "truncated": false,
         *           "nextCursor": null,
         *           "maxDurationMinutes": 240,
         *           "maxLeadDays": 14,
         *           "ticketPattern": "(CHG|INC)[0-9]{7}"
         *         }
         *       ]
         *     }
         */
        Eligibility: {
            /** @description The user, as the directory spells the name */
            userName: string;
            /** @description The version of the policy that answered (GET /policy) */
            policyVersion: string;
            /** @description Every rule whose users or groups include the user; empty: the user may request nothing */
            rules: {
                /** @description The rule’s name */
                rule: string;
                /** @description Permission set names (* : any); empty for a rule of grantable groups only */
                permissionSets: string[];
                /** @description Identity Store groups a group grant (groupName) under this rule may add the user to; empty: none */
                grantableGroups: string[];
                /** @description The rule’s accounts as the policy writes them: ids, *, OUs (ou-…) and the root (r-…) */
                accountScope: string[];
                /** @description Tags every account must carry; null: none required */
                accountTags: {
                    [key: string]: string;
                } | null;
                /** @description The rule names * (every account, within accountTags): those accounts are not listed */
                anyAccount: boolean;
                /** @description The accounts the rule names or reaches through OUs (active ones) and tags, at most limit */
                accounts: {
                    id: string;
                    /** @description From AWS Organizations; null when it was not asked */
                    name: string | null;
                }[];
                /** @description More accounts may follow: nextCursor continues the list */
                truncated: boolean;
                /** @description Pass as cursor (same userName) for this rule’s next accounts; null: the list is complete */
                nextCursor: string | null;
                /** @description The longest grant, bounded by the service maximum */
                maxDurationMinutes: number;
                /** @description How far ahead a grant may start (startsAt), bounded by the service maximum; 0: only now */
                maxLeadDays: number;
                /** @description RE2 pattern the whole ticket id must match; null: any ticket */
                ticketPattern: string | null;
            }[];
        };
        /**
         * DryRunResult
         * @example {
         *       "allowed": false,
         *       "rule": "oncall-incident-access",
         *       "failedCondition": "duration",
         *       "detail": "Rule 'oncall-incident-access' allows at most 240 minutes for AdministratorAccess on 111111111111; 600 were requested",
         *       "policyVersion": "3f2a9c1b7d4e"
         *     }
         */
        DryRunResult: {
            /** @description Whether the request, sent without dryRun now, would be allowed */
            allowed: boolean;
            /** @description The rule that allows it, or (refused) the rule that came closest */
            rule: string | null;
            /** @description Refused: the condition that failed, as POLICY_DENIED (principal, account, permissionSet, group, duration, leadTime, ticket) or TICKET_NOT_APPROVED (ticket, ticketApproval, ticketState, ticketWindow) would name it; null when allowed */
            failedCondition: string | null;
            /** @description Why, in words */
            detail: string;
            /** @description The version of the policy that decided (GET /policy) */
            policyVersion: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    health: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @example ok */
                        status: string;
                    };
                };
            };
        };
    };
    listGrants: {
        parameters: {
            query?: {
                status?: "scheduled" | "provisioning" | "active" | "revoking" | "expired" | "revoked" | "cancelled" | "denied" | "failed";
                userName?: string;
                /** @description AWS account id (12 digits) */
                accountId?: string;
                ticketId?: string;
                /** @description Page size (1–100) */
                limit?: number;
                /** @description Opaque cursor from the previous page’s nextCursor */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["Grant"][];
                        nextCursor: string | null;
                    };
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createGrant: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes retries safe: scoped to the token subject and remembered for at least 24 hours (ServiceNow: grant-, move- or end- and the change’s sys_id; see docs/servicenow.md) */
                "idempotency-key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        /** @description Two kinds of grant, told apart by their fields: an account grant names accountId and permissionSet (both), a group grant names groupName (alone). Any other mix (both kinds, neither, or half of the pair) is refused with 400 problem+json (VALIDATION_FAILED). */
        requestBody: {
            content: {
                "application/json": {
                    /**
                     * @description Identity Store user name (no control characters)
                     * @example alice
                     */
                    userName: string;
                    /**
                     * @description An account grant: the AWS account (with permissionSet; never with groupName)
                     * @example 111111111111
                     */
                    accountId?: string;
                    /**
                     * @description An account grant: the permission set name (with accountId; never with groupName)
                     * @example AdministratorAccess
                     */
                    permissionSet?: string;
                    /**
                     * @description A group grant: the Identity Store group (display name) the user is added to for the duration, instead of accountId and permissionSet. The policy rule must list it in grantableGroups. Session cut-off (JIT_SESSION_CUTOFF) does not apply to group grants.
                     * @example prod-breakglass
                     */
                    groupName?: string;
                    /**
                     * @description How long the access lasts; bounded by the policy rule and the service maximum
                     * @example 60
                     */
                    durationMinutes: number;
                    /**
                     * @description The change or incident ticket that justifies the access
                     * @example CHG0031337
                     */
                    ticketId: string;
                    /**
                     * @description Free text for auditors, on one line (no control characters: no tabs or line breaks)
                     * @example Fix failing deployment
                     */
                    justification?: string;
                    /**
                     * Format: date-time
                     * @description A later start (RFC 3339 with a time zone, e.g. a change window’s planned start), at most JIT_MAX_LEAD_DAYS (default 14) ahead and within the rule’s maxLeadDays. The grant is then recorded as scheduled and started by the first sweep after this time; expiresAt is startsAt plus durationMinutes. Leave it out to start now.
                     * @example 2026-12-24T22:00:00Z
                     */
                    startsAt?: string;
                    /**
                     * @description true: decide the request exactly as it would be decided (directory, policy, organization, ticket approval) and answer 200 with the verdict (DryRunResult), recording nothing: no grant, no audit event, nothing created in Identity Center. Input a request would refuse (400, 422) is refused the same way; an Idempotency-Key is ignored. Default false.
                     * @example false
                     */
                    dryRun?: boolean;
                };
            };
        };
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DryRunResult"];
                };
            };
            /** @description Default Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Default Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Idempotency-Key reused with a different request (IDEMPOTENCY_KEY_REUSED), or the first request with it is still running (REQUEST_IN_PROGRESS; retry after Retry-After) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Body is not application/json (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The user, permission set or group does not exist (USER_NOT_FOUND, PERMISSION_SET_NOT_FOUND, GROUP_NOT_FOUND) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Identity Center refused the assignment (PROVISIONING_FAILED); the grant is recorded as failed */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getGrant: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Not found (GRANT_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    revokeGrant: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes retries safe: scoped to the token subject and remembered for at least 24 hours (ServiceNow: grant-, move- or end- and the change’s sys_id; see docs/servicenow.md) */
                "idempotency-key"?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Default Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Not found (GRANT_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Idempotency-Key reused with a different request (IDEMPOTENCY_KEY_REUSED), or the first request with it is still running (REQUEST_IN_PROGRESS; retry after Retry-After) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    changeGrantEnd: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes retries safe: scoped to the token subject and remembered for at least 24 hours (ServiceNow: grant-, move- or end- and the change’s sys_id; see docs/servicenow.md) */
                "idempotency-key"?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        /** @description A JSON merge patch (RFC 7396) of a grant; expiresAt is the only field that can be changed. */
        requestBody: {
            content: {
                "application/merge-patch+json": {
                    /**
                     * Format: date-time
                     * @description The new end (RFC 3339 with a time zone): later extends the grant, earlier shortens it. In the future and after startsAt.
                     * @example 2026-11-25T13:00:00Z
                     */
                    expiresAt: string;
                };
                "application/json": {
                    /**
                     * Format: date-time
                     * @description The new end (RFC 3339 with a time zone): later extends the grant, earlier shortens it. In the future and after startsAt.
                     * @example 2026-11-25T13:00:00Z
                     */
                    expiresAt: string;
                };
            };
        };
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Grant"];
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Not found (GRANT_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Idempotency-Key reused with a different request (IDEMPOTENCY_KEY_REUSED), or the first request with it is still running (REQUEST_IN_PROGRESS; retry after Retry-After) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Body is not application/json (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listAuditEvents: {
        parameters: {
            query?: {
                /** @description Events at or after this time */
                from?: string;
                /** @description Events at or before this time */
                to?: string;
                userName?: string;
                /** @description AWS account id (12 digits) */
                accountId?: string;
                ticketId?: string;
                grantId?: string;
                action?: "grant.requested" | "grant.scheduled" | "grant.start_requested" | "grant.cancelled" | "grant.extended" | "grant.shortened" | "grant.denied" | "grant.activated" | "grant.failed" | "grant.revoke_requested" | "grant.revoked" | "grant.expired" | "grant.drift_detected" | "grant.delivery_failed" | "grant.sessions_cut" | "grant.cutoff_failed";
                actor?: string;
                /** @description Page size: 1–100 for JSON (default 50); for CSV/NDJSON exports up to 10,000 (default: every matching event) */
                limit?: number;
                /** @description Opaque cursor from the previous page’s nextCursor */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of events (JSON), or an export (CSV with a header row, or one JSON object per line) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["AuditEvent"][];
                        nextCursor: string | null;
                    };
                    "text/csv": string;
                    "application/x-ndjson": string;
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    verifyAuditChain: {
        parameters: {
            query?: {
                /** @description Verify from the first event at or after this time */
                from?: string;
                /** @description Verify up to the last event at or before this time */
                to?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditVerification"];
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    runRevocationSweep: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SweepSummary"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getPolicy: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PolicyView"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getEligibility: {
        parameters: {
            query: {
                /** @description The Identity Store user name */
                userName: string;
                /** @description At most this many accounts per rule (1–500); a rule with more says truncated and gives a nextCursor */
                limit?: number;
                /** @description A rule’s nextCursor from an earlier answer: only that rule is answered, its accounts from where the earlier page ended */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Eligibility"];
                };
            };
            /** @description Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The user, permission set or group does not exist (USER_NOT_FOUND, PERMISSION_SET_NOT_FOUND, GROUP_NOT_FOUND) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
}
