/**
 * The benchmark's front for two moto_servers (see split-moto.ts): DynamoDB's requests to one, every other service's
 * to the other, as AWS serves each service at its own endpoint; moto's reset to both. Run as its own process so that
 * it takes no time from the service's event loop. Prints its port once listening.
 * Usage: node moto-router.ts DYNAMODB_PORT OTHERS_PORT
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const [dynamodbPort, othersPort] = process.argv.slice(2).map(Number)
if (!dynamodbPort || !othersPort) throw new Error('usage: node moto-router.ts DYNAMODB_PORT OTHERS_PORT')
const agent = new Agent({ keepAlive: true })

function forward(
  req: IncomingMessage,
  body: Buffer,
  port: number,
): Promise<{ status: number; headers: object; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const upstream = request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        const chunks: Buffer[] = []
        answer.on('data', (chunk: Buffer) => chunks.push(chunk))
        answer.on('end', () =>
          resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }),
        )
        answer.on('error', reject)
      },
    )
    upstream.on('error', reject)
    upstream.end(body)
  })
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  // DynamoDB Streams reads the same tables, so it goes where they are.
  const dynamodb = String(req.headers['x-amz-target'] ?? '').startsWith('DynamoDB')
  // A reset must empty both, or the next build would find the last one's tables or directory.
  const reset = req.url?.startsWith('/moto-api/reset') === true
  // Inside the try: a client that gives up mid-body (an SDK timeout) must not end the router.
  try {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const [answer] = await Promise.all([
      forward(req, body, dynamodb ? (dynamodbPort as number) : (othersPort as number)),
      ...(reset ? [forward(req, body, dynamodbPort as number)] : []),
    ])
    res.writeHead(answer.status, answer.headers as Record<string, string>).end(answer.body)
  } catch {
    req.socket.destroy()
  }
}

const server = createServer((req, res) => void handle(req, res))
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port))
