import { type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns'
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { REGION } from './app.ts'

/** An SQS queue subscribed to the alert topic, as an operator's pager integration would be; answers what has arrived. */
export async function subscribeQueue(endpoint: string, sns: SNSClient, topicArn: string) {
  const sqs = new SQSClient({ region: REGION, endpoint })
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: `alerts-${Date.now()}` }))
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }),
  )
  await sns.send(
    new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: attributes.Attributes?.QueueArn }),
  )
  return async () => {
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10 }))
    return (received.Messages ?? []).map((m) => m.Body ?? '')
  }
}
