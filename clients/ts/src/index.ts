export { Cairn, Collection, createCairn, type CairnOptions, type CallOptions, type JsonClient, type ListOptions, type WriteOptions } from "./client.js";
export { CookieAuthStore, LocalAuthStore, MemoryAuthStore, StorageAuthStore, type AuthStore, type KeyValueStorage } from "./auth.js";
export { CairnError, type ErrorCode, type FieldViolation } from "./errors.js";
export { Query, type Account, type Doc, type FileInfo, type Filter, type OperatorName, type SessionInfo } from "./convert.js";
export {
  Presence, Realtime, Subscription, type EventKindName, type PresenceAction, type PresenceEvent, type PresenceMember,
  type RealtimeEvent, type RealtimeOptions, type RealtimeState,
  type WebSocketConstructor, type WebSocketLike,
} from "./realtime.js";
export {
  Passkeys, creationOptions, credentialJSON, fromBase64url, requestOptions, toBase64url, type PasskeyInfo, type PasskeyOptions,
} from "./passkeys.js";
export { chunkSize, type FileURLOptions, type PreviewOptions, type UploadOptions } from "./storage.js";
