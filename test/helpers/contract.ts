type Json = Record<string, unknown>
type Media = { schema?: { example?: { expiresAt?: string }; properties?: { expiresAt?: { example?: string } } } }

const patchMedia = (document: Json) =>
  (document.paths as Record<string, Record<string, { requestBody?: { content?: Record<string, Media> } }>>)[
    '/grants/{id}'
  ]?.patch?.requestBody?.content ?? {}

/**
 * A served document with the committed contract's PATCH example put back, after checking that the served one
 * lies ahead of now (the service serves an end that "Try it out" can use: see servedDocument). Then a served
 * document equals the committed one but for what a running service must change.
 */
export function withCommittedEndExample(
  served: Json,
  committed: Json,
  ahead: (expiresAt: string, media: string) => void,
): Json {
  const copy = structuredClone(served)
  const committedMedia = patchMedia(committed)
  for (const [media, body] of Object.entries(patchMedia(copy))) {
    ahead(String(body.schema?.example?.expiresAt), media)
    if (body.schema) {
      body.schema.example = committedMedia[media]?.schema?.example ?? {}
      if (body.schema.properties?.expiresAt)
        body.schema.properties.expiresAt.example = committedMedia[media]?.schema?.properties?.expiresAt?.example ?? ''
    }
  }
  return copy
}
