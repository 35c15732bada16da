export { Cairn, Collection, createCairn, type CairnOptions, type ListOptions, type WriteOptions } from "./client.js";
export { CookieAuthStore, LocalAuthStore, MemoryAuthStore, StorageAuthStore, type AuthStore, type KeyValueStorage } from "./auth.js";
export { CairnError, type ErrorCode, type FieldViolation } from "./errors.js";
export { Query, type Account, type Doc, type FileInfo, type Filter, type OperatorName, type SessionInfo } from "./convert.js";
export {
  Realtime, Subscription, type EventKindName, type RealtimeEvent, type RealtimeOptions, type RealtimeState,
  type WebSocketConstructor, type WebSocketLike,
} from "./realtime.js";
export { chunkSize, type FileURLOptions, type PreviewOptions, type UploadOptions } from "./storage.js";
export { AccountService } from "./gen/cairn/v1/account_pb.js";
export { DatabasesService } from "./gen/cairn/v1/databases_pb.js";
export { StorageService } from "./gen/cairn/v1/storage_pb.js";
export { TeamsService } from "./gen/cairn/v1/teams_pb.js";
export { FunctionsService } from "./gen/cairn/v1/functions_pb.js";
export { RealtimeService } from "./gen/cairn/v1/realtime_pb.js";
