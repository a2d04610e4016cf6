// Operation -> handler. Health checks are answered by the server before authentication.
import type { Handler } from '../context.ts';
import type { Operation } from '../router.ts';
import { adminHeal, adminInfo, metrics } from './admin.ts';
import { createBucket, deleteBucket, getBucketLocation, getBucketVersioning, headBucket, listBuckets } from './bucket.ts';
import { copyObject, uploadPartCopy } from './copy.ts';
import { deleteObject, deleteObjects } from './delete.ts';
import { deleteBucketEncryption, getBucketEncryption, putBucketEncryption } from './encryption.ts';
import { getObject, headObject } from './get.ts';
import { listMultipartUploads, listObjectsV1, listObjectsV2, listObjectVersions } from './list.ts';
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listParts, uploadPart } from './multipart.ts';
import { putObject } from './put.ts';

const unreachable: Handler = async () => {
  throw new Error('health checks are answered before dispatch');
};

export const handlers: Readonly<Record<Operation, Handler>> = {
  HealthLive: unreachable,
  HealthReady: unreachable,
  ListBuckets: listBuckets,
  CreateBucket: createBucket,
  DeleteBucket: deleteBucket,
  HeadBucket: headBucket,
  GetBucketLocation: getBucketLocation,
  GetBucketVersioning: getBucketVersioning,
  PutBucketEncryption: putBucketEncryption,
  GetBucketEncryption: getBucketEncryption,
  DeleteBucketEncryption: deleteBucketEncryption,
  ListObjectsV1: listObjectsV1,
  ListObjectsV2: listObjectsV2,
  ListObjectVersions: listObjectVersions,
  ListMultipartUploads: listMultipartUploads,
  DeleteObjects: deleteObjects,
  PutObject: putObject,
  CopyObject: copyObject,
  GetObject: getObject,
  HeadObject: headObject,
  DeleteObject: deleteObject,
  CreateMultipartUpload: createMultipartUpload,
  UploadPart: uploadPart,
  UploadPartCopy: uploadPartCopy,
  CompleteMultipartUpload: completeMultipartUpload,
  AbortMultipartUpload: abortMultipartUpload,
  ListParts: listParts,
  Metrics: metrics,
  AdminInfo: adminInfo,
  AdminHeal: adminHeal,
};
